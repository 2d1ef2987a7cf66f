"""``edgesmith build``: the sub-command's parser and handler (nothing heavy imported here)."""

from __future__ import annotations

import argparse
import json
import sys

from edgesmith.app.build.options import DEFAULT_TIMING, BuildOptions
from edgesmith.core.cli_args import (
    add_settings,
    add_trust_flag,
    config_from_args,
    formatter,
    given_settings,
)
from edgesmith.runtime.timing import TimingPlan

BUILD_EPILOG = """\
examples:
  edgesmith build --device cpu-x86 --data digits --out runs/build
  edgesmith build --device mcu --data digits --out runs/mcu --epochs 20
  edgesmith build --device my-board.yaml --recipe my-recipe.yaml --data cifar10 --out runs/b
  edgesmith build --device cpu-x86 --data cifar10 --from runs/r8 --out runs/b8
  edgesmith build --device arm64-linux --data digits --out runs/pi --host pi@raspberrypi.local
  edgesmith build --device arm64-linux --data digits --out runs/pi --host pi@10.0.0.7:2222 \\
      --ssh-option IdentityFile=~/.ssh/pi --remote-timeout 600

What it does: train (or start --from a trained artifact), run each candidate's compress steps,
export to the profile's formats and target, bench every file with the profile's runtime
settings (here, or with --host on the device over SSH: copy, `edgesmith bench ... --json`
there, fetch), choose the candidate that meets every budget with the best accuracy (ties: lower
p50), and write OUT/bundle/: model, labels, manifest, bench report and plots, infer.py,
README.txt (and the C array for mcu). OUT/candidates.json holds every candidate's numbers.
Running again with the same OUT reuses finished work ("reusing" lines).

OUT must be new, empty, or a folder an earlier build wrote: a build replaces only what edgesmith
wrote there (its .edgesmith-owned marker) and refuses anything else by name (exit 2); OUT.lock
stops a second build into the same OUT at once (exit 2). With --host, each run makes its own
staging folder on the device (mktemp -d under --remote-dir) and removes it afterwards, also on
failure; nothing else there is touched. ssh gives up connecting after 10 s, and the copy, the
bench and the fetch each stop after --remote-timeout seconds (exit 2).

recipe: YAML/JSON with `train:` (edgesmith train settings) and `candidates:` (name + steps in
the format of edgesmith compress recipe); the default is edgesmith/recipes/default.yaml.
shipped profiles: cpu-x86, cpu-x86-onnx, arm64-linux, jetson-gpu, int8-npu, mcu

exit codes: 0 a candidate was chosen, 1 no candidate meets the budgets, 2 bad input
"""


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``build`` to the ``edgesmith`` command's sub-parsers."""
    parser = commands.add_parser(
        "build",
        formatter_class=formatter,
        help="the best model for a device profile, with a deployable bundle",
        description="Train, compress, export and bench candidates for a device profile;\n"
        "choose the one that meets every budget with the best accuracy; write a bundle.",
        epilog=BUILD_EPILOG,
    )
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
    parser.set_defaults(handler=cmd_build)


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
