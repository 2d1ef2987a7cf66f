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
from edgesmith.train.config import MODEL_NAMES, TrainConfig

KERAS3_ONLY = ("backend", "ema", "teacher", "alpha", "temperature")
HELP = "edgesmith.train"
KERAS3_EXAMPLES = """examples:
  edgesmith train --backend jax --data cifar10 --model resnet8 --batch-size 1024 \\
      --precision mixed_bfloat16 --out runs/r8-jax
  edgesmith train --backend jax --data cifar10 --model resnet8 --augment crop,flip,erase \\
      --ema 0.999 --teacher runs/r20-jax --alpha 0.5 --out runs/r8-kd"""


def register(commands) -> None:
    """Add ``train`` and ``import`` to the CLI's sub-command parsers."""
    train = add_command(commands, "train", HELP, cmd_train)
    add_settings(train, TrainConfig, skip=KERAS3_ONLY)
    keras3 = train.add_argument_group("Keras 3 (--backend jax|torch|tensorflow)", KERAS3_EXAMPLES)
    add_settings(keras3, TrainConfig)
    train.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in OUT.partial"
    )
    add_output_flags(train)

    imp = add_command(commands, "import", HELP, cmd_import)
    imp.add_argument("--model", required=True, help=".keras or .h5 file, or SavedModel directory")
    imp.add_argument("--data", required=True, help="data spec to evaluate on")
    imp.add_argument(
        "--normalization",
        default="unit",
        help="what the model expects from pixels 0..255 (default: unit = p/255)",
    )
    add_output_flags(imp, config=False)


def cmd_train(args: argparse.Namespace) -> int:
    """``edgesmith train``."""
    from edgesmith.core.artifacts import check_output_dir
    from edgesmith.core.datasets import parse_spec
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.tfkeras.model_safety import check_model_file

    # Validate before TensorFlow loads: a typo must not cost the import's 4 seconds.
    config = config_from_args(TrainConfig, args)
    parse_spec(config.data)
    if not args.resume:
        check_output_dir(args.out)
    if config.model not in MODEL_NAMES:
        check_model_file(config.model)
    if config.backend != "tf_keras":  # Keras 3: this process never loads tf_keras
        from edgesmith.train import train_keras3 as run
    else:
        from edgesmith.train import train as run
    artifact = run(config, args.out, resume=args.resume, report=stderr_reporter(args.quiet))
    return print_artifact(args, artifact)


def cmd_import(args: argparse.Namespace) -> int:
    """``edgesmith import``."""
    from edgesmith.core.artifacts import check_output_dir
    from edgesmith.core.datasets import parse_spec
    from edgesmith.core.normalization import parse_normalization
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.tfkeras.model_safety import check_model_file

    parse_spec(args.data)
    check_output_dir(args.out)
    if args.normalization != "standard":  # standard needs the data; the rest checks now
        parse_normalization(args.normalization)
    check_model_file(args.model)
    from edgesmith.train import import_model

    artifact = import_model(
        args.model,
        args.data,
        args.out,
        normalization=args.normalization,
        report=stderr_reporter(args.quiet),
    )
    return print_artifact(args, artifact)
