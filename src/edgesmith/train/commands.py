"""``edgesmith train`` and ``edgesmith import``: the train stage's sub-commands.

Parsing and validation run without TensorFlow, so a typo costs milliseconds, not the 4 seconds
of TensorFlow's import; the handlers import the stage when they run.
"""

from __future__ import annotations

import argparse

from edgesmith.core.cli_args import formatter, print_artifact


def register(commands) -> None:
    """Add ``train`` and ``import`` to the CLI's sub-command parsers."""
    from edgesmith.core.datasets import SPEC_HELP

    train = commands.add_parser(
        "train",
        formatter_class=formatter,
        help="train a zoo model or fine-tune a model file",
        description="Train a CNN on a dataset and write a Keras artifact with its eval accuracy.\n"
        "An interrupted run continues from its last finished epoch with --resume.",
        epilog="examples:\n"
        "  edgesmith train --data digits --model resnet8 --epochs 2 --out runs/a\n"
        "  EDGESMITH_DATA_DIR=~/data edgesmith train --data cifar10 --model resnet8 "
        "--epochs 40 --out runs/r8\n"
        "  edgesmith train --data npz:faces.npz --model my.keras --epochs 5 "
        "--normalization standard --out runs/ft\n"
        "  edgesmith train --config recipe.yaml --out runs/b\n\n"
        "models: seed_cnn, resnet8, resnet20, dscnn, or a .keras/.h5/SavedModel path\n" + SPEC_HELP,
    )
    train.add_argument("--data", help="data spec (default: digits)")
    train.add_argument("--model", help="zoo name or model file (default: resnet8)")
    _add_trust_flag(train)
    train.add_argument("--epochs", type=int, help="passes over the data (default: 30)")
    train.add_argument("--batch-size", type=int, dest="batch_size", help="default: 128")
    train.add_argument("--optimizer", choices=("sgd", "adam"), help="default: sgd (Nesterov)")
    train.add_argument(
        "--lr",
        type=float,
        dest="learning_rate",
        help="peak learning rate (default: 0.2 x batch/128 for sgd, 1e-3 adam)",
    )
    train.add_argument("--weight-decay", type=float, dest="weight_decay", help="default: 2.5e-3")
    train.add_argument("--schedule", choices=("cosine", "constant"), help="default: cosine")
    train.add_argument("--warmup-epochs", type=float, dest="warmup_epochs", help="default: 1")
    train.add_argument("--label-smoothing", type=float, dest="label_smoothing", help="default: 0.1")
    train.add_argument("--augment", help="auto, none, or crop,flip (default: auto)")
    train.add_argument(
        "--augment-on",
        dest="augment_on",
        metavar="{auto,host,device}",
        help="where to normalise and augment: host (tf.data) or device (in the training step, "
        "on the GPU if training on one); auto: device on a GPU (default)",
    )
    train.add_argument(
        "--normalization",
        help="unit, raw, standard or scale=S,mean=a,b,c,std=a,b,c (default: unit)",
    )
    train.add_argument("--seed", type=int, help="default: 0")
    train.add_argument(
        "--strategy",
        choices=("auto", "multiworker"),
        help="multiworker: train with the machines TF_CONFIG lists (default: auto)",
    )
    train.add_argument(
        "--precision",
        choices=("float32", "mixed_float16", "mixed_bfloat16"),
        help="compute precision; the saved model is float32 (default: float32)",
    )
    train.add_argument(
        "--xla", action="store_true", default=None, help="compile the training step with XLA"
    )
    train.add_argument(
        "--accelerator",
        choices=("auto", "cpu", "gpu"),
        help="what trains; auto: a GPU when present (default)",
    )
    _add_keras3_flags(train)
    train.add_argument("--config", help="YAML/JSON file of these settings; flags override it")
    train.add_argument("--out", required=True, help="new artifact directory")
    train.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in OUT.partial"
    )
    _add_output_flags(train)
    train.set_defaults(handler=cmd_train)

    imp = commands.add_parser(
        "import",
        formatter_class=formatter,
        help="register a trained Keras model as an artifact",
        description="Evaluate a user's trained Keras model on a dataset and write it as an\n"
        "artifact that compress, export and bench can start from. The file does not\n"
        "say how its inputs were normalised: say it with --normalization.",
        epilog="examples:\n"
        "  edgesmith import --model resnet.h5 --data cifar10 --out runs/imported\n"
        "  edgesmith import --model net.keras --data folder:photos?size=96x96 "
        "--normalization raw --out runs/net\n\n" + SPEC_HELP,
    )
    imp.add_argument("--model", required=True, help=".keras or .h5 file, or SavedModel directory")
    _add_trust_flag(imp)
    imp.add_argument("--data", required=True, help="data spec to evaluate on")
    imp.add_argument(
        "--normalization",
        default="unit",
        help="what the model expects from pixels 0..255 (default: unit = p/255)",
    )
    imp.add_argument("--out", required=True, help="new artifact directory")
    _add_output_flags(imp)
    imp.set_defaults(handler=cmd_import)


def _add_keras3_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Keras 3 (--backend jax|torch|tensorflow)",
        "examples:\n"
        "  edgesmith train --backend jax --data cifar10 --model resnet8 --batch-size 1024 "
        "--precision mixed_bfloat16 --out runs/r8-jax\n"
        "  edgesmith train --backend jax --data cifar10 --model resnet8 --augment crop,flip,erase "
        "--ema 0.999 --teacher runs/r20-jax --distill-alpha 0.5 --out runs/r8-kd",
    )
    group.add_argument(
        "--backend",
        choices=("tf_keras", "jax", "torch", "tensorflow"),
        help="tf_keras (default): the tf_keras trainer; jax, torch or tensorflow: Keras 3 on that "
        "backend (pip install 'edgesmith[train-jax]' or '[train-torch]'), augmenting on the "
        "accelerator; the artifact is the same",
    )
    group.add_argument(
        "--ema",
        type=float,
        help="average the weights with this decay (e.g. 0.999); the saved model is the average",
    )
    group.add_argument("--teacher", help="Keras 3 .keras file or train artifact to distil from")
    group.add_argument(
        "--distill-alpha",
        type=float,
        dest="distill_alpha",
        help="hard-label loss weight with --teacher, 0..1 (default: 0.5)",
    )
    group.add_argument(
        "--distill-temperature",
        type=float,
        dest="distill_temperature",
        help="distillation temperature (default: 4)",
    )


def _add_trust_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-model",
        dest="trust_model",
        action="store_true",
        help="load a model file that runs code when loaded (Lambda layers, custom classes, "
        "SavedModel); refused by default, see SECURITY.md",
    )


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--json", action="store_true", help="print the written manifest as JSON on stdout"
    )


def cmd_train(args: argparse.Namespace) -> int:
    """``edgesmith train``."""
    from edgesmith.core.config import load_config_file
    from edgesmith.core.progress import stderr_reporter

    values = load_config_file(args.config) if args.config else {}
    names = (
        "data",
        "model",
        "epochs",
        "batch_size",
        "optimizer",
        "learning_rate",
        "weight_decay",
        "schedule",
        "warmup_epochs",
        "label_smoothing",
        "augment",
        "augment_on",
        "normalization",
        "seed",
        "accelerator",
        "strategy",
        "precision",
        "xla",
        "backend",
        "ema",
        "teacher",
        "distill_alpha",
        "distill_temperature",
    )
    values.update({k: getattr(args, k) for k in names if getattr(args, k) is not None})
    # Validate before TensorFlow loads: a typo must not cost the import's 4 seconds.
    from edgesmith.core.artifacts import check_output_dir
    from edgesmith.core.datasets import parse_spec
    from edgesmith.tfkeras.model_safety import check_model_file
    from edgesmith.train.config import MODEL_NAMES, TrainConfig

    config = TrainConfig.from_dict(values)
    parse_spec(config.data)
    if not args.resume:
        check_output_dir(args.out)
    if config.model not in MODEL_NAMES:
        check_model_file(config.model, trust_model=args.trust_model)
    if config.backend != "tf_keras":  # Keras 3: this process never loads tf_keras
        from edgesmith.train import train_keras3

        artifact = train_keras3(
            config,
            args.out,
            resume=args.resume,
            report=stderr_reporter(args.quiet),
            trust_model=args.trust_model,
        )
        return print_artifact(args, artifact)
    from edgesmith.train import train

    artifact = train(
        config,
        args.out,
        resume=args.resume,
        report=stderr_reporter(args.quiet),
        trust_model=args.trust_model,
    )
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
    check_model_file(args.model, trust_model=args.trust_model)
    from edgesmith.train import import_model

    artifact = import_model(
        args.model,
        args.data,
        args.out,
        normalization=args.normalization,
        report=stderr_reporter(args.quiet),
        trust_model=args.trust_model,
    )
    return print_artifact(args, artifact)
