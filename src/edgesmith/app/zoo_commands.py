"""``edgesmith zoo list`` and ``edgesmith zoo get``: the pretrained models in the package."""

from __future__ import annotations

import argparse
import dataclasses
import json

from edgesmith.core.cli_args import add_command, add_output_flags, print_artifact

HELP = "edgesmith.app"
FORMATS = ("keras", "tflite-int8")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``zoo`` and its ``list`` and ``get`` sub-commands to the CLI."""
    parser = add_command(commands, "zoo", HELP)
    actions = parser.add_subparsers(dest="zoo_action", metavar="ACTION", required=True)
    listing = add_command(actions, "list", HELP, cmd_list, help_file="zoo-list")
    listing.add_argument("--json", action="store_true", help="print the entries as JSON")
    get = add_command(actions, "get", HELP, cmd_get, help_file="zoo-get")
    get.add_argument("name", metavar="NAME", help="a name from edgesmith zoo list")
    add_output_flags(get, config=False, trust=False)
    get.add_argument(
        "--format",
        default="keras",
        choices=FORMATS,
        help="keras: the train artifact; tflite-int8: its int8 export (default: keras)",
    )


def cmd_list(args: argparse.Namespace) -> int:
    """``edgesmith zoo list``."""
    from edgesmith.core.pretrained import entries

    found = entries().values()
    if args.json:
        print(json.dumps([dataclasses.asdict(entry) for entry in found], indent=2))
        return 0
    print(f"{'name':<22} {'int8 10,000':>11} {'MLPerf 200':>10} {'int8 B':>8} {'MACs':>7}  made by")
    for entry in found:
        m, made = entry.measured, entry.made
        print(
            f"{entry.name:<22} {m['int8_accuracy_cifar10_test']:>11.2%} "
            f"{m['int8_accuracy_mlperf200']:>10.1%} {m['int8_bytes']:>8,} "
            f"{m['macs'] / 1e6:>6.2f}M  {made['run']} ({made['epochs']} epochs, seed "
            f"{made['seed']})"
        )
        print(f"{'':<22} {entry.description}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """``edgesmith zoo get NAME --out DIR``."""
    from edgesmith.core.pretrained import get
    from edgesmith.core.progress import stderr_reporter

    artifact = get(args.name, args.out, args.format)
    metrics = artifact.manifest.metrics
    stderr_reporter(args.quiet)(
        f"{args.name} ({args.format}): accuracy {metrics.accuracy:.2%} on {metrics.num_eval:,} "
        "CIFAR-10 test images"
    )
    return print_artifact(args, artifact)
