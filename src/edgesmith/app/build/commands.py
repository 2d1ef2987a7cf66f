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
    add_settings,
    add_trust_flag,
    config_from_args,
    given_settings,
)
from edgesmith.runtime.timing import TimingPlan


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``build`` to the ``edgesmith`` command's sub-parsers."""
    parser = add_command(commands, "build", "edgesmith.app.build", cmd_build)
    parser.add_argument("--device", required=True, metavar="PROFILE", help="profile name or YAML")
    parser.add_argument("--data", required=True, metavar="SPEC", help="data spec (e.g. digits)")
    parser.add_argument("--out", required=True, metavar="DIR", help="build directory")
    add_settings(parser, BuildOptions)
    parser.add_argument(
        "--ssh-option",
        dest="ssh_options",
        action="append",
        metavar="OPT",
        help="extra ssh/scp -o option, repeatable (e.g. Port=2222)",
    )
    add_settings(
        parser, TimingPlan, skip=("warmup_runs", "warmup_seconds"), defaults=DEFAULT_TIMING
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--json", action="store_true", help="print candidates.json on stdout instead of the table"
    )
    add_trust_flag(parser)


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
    print(result.table())
    if result.chosen is not None:
        chosen = result.chosen
        print(
            f"chosen: {chosen['name']} - top-1 {100 * chosen['accuracy']:.2f}%, "
            f"{chosen['size_bytes'] / 1024:,.1f} KB, p50 {chosen['p50_ms']:.4f} ms; "
            f"bundle {result.bundle}"
        )
    sys.stdout.flush()
