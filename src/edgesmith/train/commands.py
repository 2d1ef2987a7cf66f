"""``edgesmith train`` and ``edgesmith import``: the train stage's sub-commands.

``train``'s flags are :class:`~edgesmith.train.config.TrainConfig`'s fields. Parsing and
validation run without TensorFlow, so a typo costs milliseconds, not the 4 seconds of
TensorFlow's import; the handlers import the stage when they run. The texts are in
``train/help/``.
"""

from __future__ import annotations

import argparse

from edgesmith.core.cli_args import (
    add_command,
    add_output_flags,
    add_settings,
    config_from_args,
    print_artifact,
)
from edgesmith.train.config import ImportConfig, TrainConfig

KERAS3_ONLY = ("backend", "ema", "teacher", "alpha", "temperature")
HELP = "edgesmith.train"


def register(commands) -> None:
    """Add ``train`` and ``import`` to the CLI's sub-command parsers."""
    train = add_command(commands, "train", HELP, cmd_train)
    add_settings(train, TrainConfig, skip=KERAS3_ONLY)
    keras3 = train.add_argument_group("Keras 3 (--backend jax|torch|tensorflow)")
    add_settings(keras3, TrainConfig)
    train.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in OUT.partial"
    )
    add_output_flags(train)

    imp = add_command(commands, "import", HELP, cmd_import)
    add_settings(imp, ImportConfig, required=("model", "data"))
    add_output_flags(imp, config=False)


def cmd_train(args: argparse.Namespace) -> int:
    """``edgesmith train``: every input is checked before TensorFlow loads."""
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.train.prechecks import check_train_inputs

    config = config_from_args(TrainConfig, args)
    check_train_inputs(config, args.out, resume=args.resume)
    if config.backend != "tf_keras":  # Keras 3: this process never loads tf_keras
        from edgesmith.train import train_keras3 as run
    else:
        from edgesmith.train import train as run
    artifact = run(config, args.out, resume=args.resume, report=stderr_reporter(args.quiet))
    return print_artifact(args, artifact)


def cmd_import(args: argparse.Namespace) -> int:
    """``edgesmith import``: every input is checked before TensorFlow loads."""
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.train.prechecks import check_import_inputs

    config = config_from_args(ImportConfig, args)
    check_import_inputs(config, args.out)
    from edgesmith.train import import_model

    report = stderr_reporter(args.quiet)
    artifact = import_model(
        config.model, config.data, args.out, normalization=config.normalization, report=report
    )
    return print_artifact(args, artifact)
