"""The ``edgesmith`` command: parse, load config, call the library, return an exit code.

Exit codes: 0 success, 1 a check failed, 2 bad input or usage, 3 an unexpected error (a bug),
130 interrupted. Heavy stages are imported inside their command, so ``edgesmith --help`` and
``edgesmith info`` never import TensorFlow. Each command's texts are in its package's ``help/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from edgesmith import __version__
from edgesmith.core.cli_args import Parser, add_command, formatter
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.help_texts import read_help
from edgesmith.tfkeras.model_safety import trusting_model_code

HELP = "edgesmith.app"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render the README's CLI tour)."""
    texts = read_help(HELP, "edgesmith")
    parser = Parser(
        prog="edgesmith",
        formatter_class=formatter,
        epilog=texts.epilog,
        description=texts.description,
    )
    parser.add_argument("--version", action="version", version=f"edgesmith {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and TensorFlow's own log lines"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for register in _stage_registrars():
        register(commands)

    demo = add_command(commands, "demo", HELP, cmd_demo)
    demo.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    demo.add_argument("--epochs", type=int, default=20, help="training epochs (default: 20)")
    demo.add_argument("--quiet", action="store_true", help="no progress lines")

    info = add_command(commands, "info", HELP, cmd_info)
    info.add_argument("path", metavar="DIR", help="artifact directory")
    info.add_argument("--json", action="store_true", help="print the manifest as JSON")
    info.add_argument("--no-verify", action="store_true", help="skip re-hashing the files")
    return parser


def _stage_registrars() -> list:
    """The stages' own sub-command registrars: ``register(commands)`` adds their parsers.

    Each registrar module must stay TensorFlow-free at import (its handlers import lazily).
    """
    from edgesmith.app import zoo_commands as zoo
    from edgesmith.app.build import commands as build
    from edgesmith.compress import commands as compress
    from edgesmith.export import commands as export
    from edgesmith.runtime import commands as runtime
    from edgesmith.train import commands as train

    return [stage.register for stage in (train, compress, export, runtime, build, zoo)]


def cmd_demo(args: argparse.Namespace) -> int:
    """``edgesmith demo``."""
    from edgesmith.app.demo import run_demo
    from edgesmith.core.config import check_positive_int
    from edgesmith.core.progress import stderr_reporter

    check_positive_int("--epochs", args.epochs)
    run_demo(args.out, epochs=args.epochs, report=stderr_reporter(args.quiet))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """``edgesmith info``."""
    from edgesmith.app.info import describe_artifact
    from edgesmith.core.artifacts import read_artifact

    artifact = read_artifact(args.path, verify=not args.no_verify)
    manifest = artifact.manifest.to_dict()
    print(json.dumps(manifest, indent=2) if args.json else describe_artifact(artifact))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises for user errors).

    A command's ``--trust-model`` opens the one trust scope every model load consults
    (:func:`~edgesmith.tfkeras.model_safety.trusting_model_code`), however deep the load is.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, a usage error: a code, not an exception
        return exc.code if isinstance(exc.code, int) else 2
    if args.debug:
        os.environ["EDGESMITH_VERBOSE_TF"] = "1"
    try:
        with trusting_model_code(getattr(args, "trust_model", False)):
            return args.handler(args)
    except EdgesmithError as exc:
        print(f"edgesmith: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `edgesmith info DIR | head`: the reader went away mid-output
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):  # nothing more to say, and no traceback at exit
            os.dup2(devnull, stream.fileno())
        return 141  # what a shell reports for a writer killed by SIGPIPE: not success
    except KeyboardInterrupt:
        staged = args.command == "train" and Path(f"{args.out}.partial", "backup").exists()
        hint = " (continue with --resume)" if staged else ""
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
