"""``edgesmith train`` and ``edgesmith import``: the train stage's sub-commands.

``train``'s flags are :class:`~edgesmith.train.config.TrainConfig`'s fields. Parsing and
validation run without TensorFlow, so a typo costs milliseconds, not the 4 seconds of
TensorFlow's import; the handlers import the stage when they run.
"""

from __future__ import annotations

import argparse

from edgesmith.core.cli_args import (
    add_output_flags,
    add_settings,
    config_from_args,
    formatter,
    print_artifact,
)
from edgesmith.train.config import MODEL_NAMES, TrainConfig

KERAS3_ONLY = ("backend", "ema", "teacher", "alpha", "temperature")
TRAIN_EXAMPLES = """examples:
  edgesmith train --data digits --model resnet8 --epochs 2 --out runs/a
  EDGESMITH_DATA_DIR=~/data edgesmith train --data cifar10 --model resnet8 --epochs 40 \\
      --out runs/r8
  edgesmith train --data npz:faces.npz --model my.keras --epochs 5 --normalization standard \\
      --out runs/ft
  edgesmith train --config recipe.yaml --out runs/b

models: seed_cnn, resnet8, resnet20, dscnn, or a .keras/.h5/SavedModel path
"""
KERAS3_EXAMPLES = """examples:
  edgesmith train --backend jax --data cifar10 --model resnet8 --batch-size 1024 \\
      --precision mixed_bfloat16 --out runs/r8-jax
  edgesmith train --backend jax --data cifar10 --model resnet8 --augment crop,flip,erase \\
      --ema 0.999 --teacher runs/r20-jax --alpha 0.5 --out runs/r8-kd"""
IMPORT_EXAMPLES = """examples:
  edgesmith import --model resnet.h5 --data cifar10 --out runs/imported
  edgesmith import --model net.keras --data folder:photos?size=96x96 --normalization raw \\
      --out runs/net

"""


def register(commands) -> None:
    """Add ``train`` and ``import`` to the CLI's sub-command parsers."""
    from edgesmith.core.datasets import SPEC_HELP

    train = commands.add_parser(
        "train",
        formatter_class=formatter,
        help="train a zoo model or fine-tune a model file",
        description="Train a CNN on a dataset and write a Keras artifact with its eval accuracy.\n"
        "An interrupted run continues from its last finished epoch with --resume.",
        epilog=TRAIN_EXAMPLES + SPEC_HELP,
    )
    add_settings(train, TrainConfig, skip=KERAS3_ONLY)
    keras3 = train.add_argument_group("Keras 3 (--backend jax|torch|tensorflow)", KERAS3_EXAMPLES)
    add_settings(keras3, TrainConfig)
    train.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in OUT.partial"
    )
    add_output_flags(train)
    train.set_defaults(handler=cmd_train)

    imp = commands.add_parser(
        "import",
        formatter_class=formatter,
        help="register a trained Keras model as an artifact",
        description="Evaluate a user's trained Keras model on a dataset and write it as an\n"
        "artifact that compress, export and bench can start from. The file does not\n"
        "say how its inputs were normalised: say it with --normalization.",
        epilog=IMPORT_EXAMPLES + SPEC_HELP,
    )
    imp.add_argument("--model", required=True, help=".keras or .h5 file, or SavedModel directory")
    imp.add_argument("--data", required=True, help="data spec to evaluate on")
    imp.add_argument(
        "--normalization",
        default="unit",
        help="what the model expects from pixels 0..255 (default: unit = p/255)",
    )
    add_output_flags(imp, config=False)
    imp.set_defaults(handler=cmd_import)


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
