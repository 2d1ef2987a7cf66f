"""What ``train`` and ``import`` refuse before TensorFlow loads.

A typo in a flag, a data spec or an output folder must cost milliseconds, not the seconds of
TensorFlow's import; so the CLI and the API call these first, and only then load the stage.
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.train.config import MODEL_NAMES, ImportConfig, TrainConfig


def check_train_inputs(config: TrainConfig, out: str | Path, *, resume: bool = False) -> None:
    """The data spec, the output folder (unless resuming) and a model file to fine-tune.

    Raises:
        EdgesmithError: for the first of them that is wrong.
    """
    from edgesmith.core.artifacts import check_output_dir
    from edgesmith.core.datasets import parse_spec
    from edgesmith.tfkeras.model_safety import check_model_file

    parse_spec(config.data)
    if not resume:
        check_output_dir(out)
    if config.model not in MODEL_NAMES:
        check_model_file(config.model_file)


def check_import_inputs(config: ImportConfig, out: str | Path) -> None:
    """The data spec, the output folder and the model file (refused if it would run code).

    Raises:
        EdgesmithError: for the first of them that is wrong.
    """
    from edgesmith.core.artifacts import check_output_dir
    from edgesmith.core.datasets import parse_spec
    from edgesmith.tfkeras.model_safety import check_model_file

    parse_spec(config.data)
    check_output_dir(out)
    check_model_file(config.model)
