"""``edgesmith build``: the sub-command's parser and handler (nothing heavy imported here).

The texts are in ``app/build/help/build.txt``.
"""

from __future__ import annotations

import argparse
import json
import sys

from edgesmith.app.build.options import DEFAULT_TIMING, BuildOptions
from edgesmith.core.cli_args import (
    add_command,
    add_output_flags,
    add_settings,
    config_from_args,
    given_settings,
)
from edgesmith.runtime.timing import TimingPlan


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``build`` to the ``edgesmith`` command's sub-parsers."""
    parser = add_command(commands, "build", "edgesmith.app.build", cmd_build)
    parser.add_argument("--device", required=True, metavar="PROFILE", help="profile name or YAML")
    parser.add_argument("--data", required=True, metavar="SPEC", help="data spec (e.g. digits)")
    add_settings(parser, BuildOptions)
    add_settings(
        parser, TimingPlan, skip=("warmup_runs", "warmup_seconds"), defaults=DEFAULT_TIMING
    )
    json_help = "print candidates.json on stdout instead of the table"
    add_output_flags(parser, out="build directory", config=False, json_help=json_help)


def cmd_build(args: argparse.Namespace) -> int:
    """``edgesmith build``."""
    from edgesmith.app.build.pipeline import build
    from edgesmith.core.errors import CheckFailed
    from edgesmith.core.progress import stderr_reporter

    options = config_from_args(BuildOptions, args)
    timing = DEFAULT_TIMING.replace(**given_settings(args, TimingPlan))
    try:
        result = build(
            args.device,
            args.data,
            args.out,
            options,
            timing=timing,
            report=stderr_reporter(args.quiet),
        )
    except CheckFailed as exc:
        result = getattr(exc, "result", None)
        if result is not None:
            _print(args, result)
        raise
    _print(args, result)
    return 0


def _print(args: argparse.Namespace, result) -> None:
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    from edgesmith.app.build.select import chosen_line

    print(result.table())
    if result.chosen is not None:
        print(chosen_line(result.chosen, result.bundle))
    sys.stdout.flush()
