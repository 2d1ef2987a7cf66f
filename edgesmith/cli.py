"""The ``edgesmith`` command: parse, load config, call the library, return an exit code.

Exit codes: 0 success, 1 a check failed, 2 bad input or usage, 3 an unexpected error (a bug),
130 interrupted. Heavy stages are imported inside their command, so ``edgesmith --help`` and
``edgesmith info`` never import TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence

from edgesmith import __version__
from edgesmith.cli_args import formatter, print_artifact
from edgesmith.errors import EdgesmithError

EPILOG_MAIN = """\
examples:
  edgesmith train --data digits --model resnet8 --epochs 2 --out runs/digits
  edgesmith import --model my_model.keras --data cifar10 --normalization unit --out runs/mine
  edgesmith info runs/digits

exit codes: 0 success, 1 check failed, 2 bad input, 3 unexpected error (please report it)
"""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render the README's CLI tour)."""
    from edgesmith.datasets import SPEC_HELP

    parser = argparse.ArgumentParser(
        prog="edgesmith",
        formatter_class=formatter,
        epilog=EPILOG_MAIN,
        description="Train a CNN, compress it, export it and measure it on the edge device.",
    )
    parser.add_argument("--version", action="version", version=f"edgesmith {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and TensorFlow's own log lines"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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
        "--device", choices=("auto", "cpu", "gpu"), help="auto: a GPU when present (default)"
    )
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
    imp.add_argument("--data", required=True, help="data spec to evaluate on")
    imp.add_argument(
        "--normalization",
        default="unit",
        help="what the model expects from pixels 0..255 (default: unit = p/255)",
    )
    imp.add_argument("--out", required=True, help="new artifact directory")
    _add_output_flags(imp)
    imp.set_defaults(handler=cmd_import)

    demo = commands.add_parser(
        "demo",
        formatter_class=formatter,
        help="the whole pipeline on the embedded digits data, in a few minutes",
        description="Train ResNet-8 on the embedded digits data, compress it four ways (75%%\n"
        "pruning, channel pruning, QAT, distillation from a ResNet-20), export to TFLite and\n"
        "ONNX with a parity check on every file, and benchmark everything side by side:\n"
        "a table, a Markdown report and a Pareto plot. A re-run reuses finished steps.",
        epilog="examples:\n  edgesmith demo\n  edgesmith demo --out /tmp/demo --epochs 10",
    )
    demo.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    demo.add_argument("--epochs", type=int, default=20, help="training epochs (default: 20)")
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    demo.set_defaults(handler=cmd_demo)

    info = commands.add_parser(
        "info",
        formatter_class=formatter,
        help="show an artifact's manifest",
        description="Print an artifact directory's manifest for a person (or as JSON), after\n"
        "checking its schema version and every file's sha256.",
        epilog="examples:\n  edgesmith info runs/a\n  edgesmith info runs/a --json | jq .metrics",
    )
    info.add_argument("path", metavar="DIR", help="artifact directory")
    info.add_argument("--json", action="store_true", help="print the manifest as JSON")
    info.add_argument("--no-verify", action="store_true", help="skip re-hashing the files")
    info.set_defaults(handler=cmd_info)
    for register in _stage_registrars():
        register(commands)
    return parser


def _stage_registrars() -> list:
    """The stages' own sub-command registrars: ``register(commands)`` adds their parsers.

    Each registrar module must stay TensorFlow-free at import (its handlers import lazily).
    """
    from edgesmith.build.commands import register as register_build
    from edgesmith.compress.commands import register as register_compress
    from edgesmith.export.commands import register as register_export
    from edgesmith.runtime.commands import register as register_runtime

    return [register_compress, register_export, register_runtime, register_build]


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--json", action="store_true", help="print the written manifest as JSON on stdout"
    )


def cmd_train(args: argparse.Namespace) -> int:
    """``edgesmith train``."""
    from edgesmith.config import load_config_file
    from edgesmith.progress import stderr_reporter

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
        "device",
        "strategy",
        "precision",
        "xla",
    )
    values.update({k: getattr(args, k) for k in names if getattr(args, k) is not None})
    # Validate before TensorFlow loads: a typo must not cost the import's 4 seconds.
    from edgesmith.artifacts import check_output_dir
    from edgesmith.datasets import parse_spec
    from edgesmith.train.config import TrainConfig

    config = TrainConfig.from_dict(values)
    parse_spec(config.data)
    if not args.resume:
        check_output_dir(args.out)
    from edgesmith.train import train

    artifact = train(config, args.out, resume=args.resume, report=stderr_reporter(args.quiet))
    return print_artifact(args, artifact)


def cmd_import(args: argparse.Namespace) -> int:
    """``edgesmith import``."""
    from edgesmith.artifacts import check_output_dir
    from edgesmith.datasets import parse_spec
    from edgesmith.normalization import parse_normalization
    from edgesmith.progress import stderr_reporter

    parse_spec(args.data)
    check_output_dir(args.out)
    if args.normalization != "standard":  # standard needs the data; the rest checks now
        parse_normalization(args.normalization)
    from edgesmith.train import import_model

    artifact = import_model(
        args.model,
        args.data,
        args.out,
        normalization=args.normalization,
        report=stderr_reporter(args.quiet),
    )
    return print_artifact(args, artifact)


def cmd_demo(args: argparse.Namespace) -> int:
    """``edgesmith demo``."""
    from edgesmith.config import check_positive_int
    from edgesmith.demo import run_demo
    from edgesmith.progress import stderr_reporter

    check_positive_int("--epochs", args.epochs)
    run_demo(args.out, epochs=args.epochs, report=stderr_reporter(args.quiet))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """``edgesmith info``."""
    from edgesmith.artifacts import read_artifact
    from edgesmith.info import describe_artifact

    artifact = read_artifact(args.path, verify=not args.no_verify)
    print(json.dumps(artifact.manifest, indent=2) if args.json else describe_artifact(artifact))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises for user errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        os.environ["EDGESMITH_VERBOSE_TF"] = "1"
    try:
        return args.handler(args)
    except EdgesmithError as exc:
        print(f"edgesmith: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        hint = " (continue with --resume)" if args.command == "train" else ""
        print(f"edgesmith: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: a bug, reported without a traceback
        if args.debug:
            traceback.print_exc()
        else:
            print(
                f"edgesmith: unexpected error: {type(exc).__name__}: {exc} "
                "(rerun with --debug for the traceback, and please report it)",
                file=sys.stderr,
            )
        return 3


if __name__ == "__main__":
    sys.exit(main())
