"""The runtime's sub-commands: ``edgesmith bench``, ``edgesmith check`` and ``edgesmith device``.

Imported whenever the CLI builds its parser, so it imports nothing heavy: the runtimes load
inside the handlers, and TensorFlow never. The work is :mod:`edgesmith.runtime.bench_run`'s and
:mod:`edgesmith.runtime.regression`'s; the texts are in ``runtime/help/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgesmith.core.cli_args import (
    add_command,
    add_output_flags,
    add_settings,
    config_from_args,
    given_settings,
)
from edgesmith.runtime.bench import BenchConfig
from edgesmith.runtime.regression import CHECK_TIMING, CheckOptions
from edgesmith.runtime.timing import TimingPlan

HELP = "edgesmith.runtime"
STORE_HELP = (
    "write the bench document to FILE and the benched model files to its store folder beside "
    "it (the baseline for edgesmith check)"
)
OVERWRITE_HELP = "replace output files edgesmith did not write (by default refused, exit 2)"


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``bench``, ``check`` and ``device`` to the ``edgesmith`` command's sub-parsers."""
    bench = add_command(commands, "bench", HELP, cmd_bench)
    _paths(bench)
    bench.add_argument(
        "--data", metavar="SPEC", help="data spec for inputs and accuracy (default: none)"
    )
    bench.add_argument(
        "--device",
        metavar="PROFILE",
        help="device profile (shipped name or YAML): its provider, threads and affinity, "
        "and a verdict on its budgets; flags override it",
    )
    add_settings(bench, BenchConfig)
    add_settings(bench, TimingPlan)
    bench.add_argument(
        "--allow-delegate",
        action="store_true",
        help="load the delegate library the --device profile names (native code; a "
        "--provider delegate:PATH on the command line needs no such flag)",
    )
    _outputs(bench, "the bench document", STORE_HELP)
    bench.add_argument("--report", metavar="FILE", help="write a Markdown report")
    bench.add_argument("--plots", metavar="DIR", help="write PNG plots (needs matplotlib)")

    check = add_command(commands, "check", HELP, cmd_check)
    _paths(check)
    check.add_argument("--baseline", required=True, metavar="FILE", help="bench JSON to beat")
    add_settings(check, CheckOptions)
    add_settings(check, TimingPlan, skip=("warmup_runs", "warmup_seconds"), defaults=CHECK_TIMING)
    _outputs(check, "the verdicts", "write the verdicts as JSON to FILE")

    device = add_command(commands, "device", HELP)
    actions = device.add_subparsers(dest="action", metavar="ACTION", required=True)
    setup = add_command(actions, "setup", HELP, cmd_device_setup, help_file="device-setup")
    setup.add_argument("target", choices=("aarch64",), metavar="TARGET", help="aarch64")
    setup.add_argument(
        "directory",
        nargs="?",
        metavar="DIR",
        help="the env folder (default: $EDGESMITH_AARCH64_ENV, else ~/.cache/edgesmith/aarch64)",
    )
    setup.add_argument("--quiet", action="store_true", help="no progress lines")


def _paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="artifact directories or .tflite/.onnx files"
    )


def _outputs(parser: argparse.ArgumentParser, what: str, json_out: str) -> None:
    add_output_flags(
        parser,
        out=None,
        config=False,
        json_help=f"print {what} as JSON on stdout",
        json_out=json_out,
        overwrite=OVERWRITE_HELP,
        trust=False,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    """``edgesmith bench``."""
    from edgesmith.core.profiles import load_profile
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.runtime import bench_run
    from edgesmith.runtime.source import expand_paths

    profile = load_profile(args.device) if args.device else None
    given, timing = given_settings(args, BenchConfig), given_settings(args, TimingPlan)
    config = bench_run.bench_config(given, timing, profile, allow_delegate=args.allow_delegate)
    outputs = {"json_out": args.json_out, "markdown_out": args.report, "plots_dir": args.plots}
    bench_run.claim_outputs(**outputs, overwrite=args.overwrite, emulate=config.emulate)
    report = stderr_reporter(args.quiet)
    run = bench_run.run_bench(
        expand_paths(args.paths), data=args.data, config=config, profile=profile, report=report
    )
    for record in run.document.results:  # fall-backs and missing metadata: even with --quiet
        for note in record.notes:
            print(f"edgesmith: note: {note}", file=sys.stderr)
    bench_run.write_bench_outputs(run, **outputs, report=report)
    if args.json:
        print(json.dumps(run.document.to_dict(), indent=2))
    summary = bench_run.bench_summary(run.document, profile)
    print(summary, file=sys.stderr if args.json else sys.stdout)
    if profile is not None:
        from edgesmith.runtime.budgets import raise_over_budget

        raise_over_budget(run.document.results, profile.name)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``edgesmith check``."""
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.runtime.bench_run import claim_outputs, write_json_file
    from edgesmith.runtime.regression import check, raise_on_failure
    from edgesmith.runtime.source import expand_paths

    claim_outputs(json_out=args.json_out, overwrite=args.overwrite)
    timing = CHECK_TIMING.replace(**given_settings(args, TimingPlan))
    options = config_from_args(CheckOptions, args, timing=timing)
    if options.measure == "instructions":
        from edgesmith.runtime.instructions import check_countable

        check_countable(BenchConfig())  # no valgrind: say so before any model is loaded
    verdicts = check(
        expand_paths(args.paths), args.baseline, options, report=stderr_reporter(args.quiet)
    )
    for verdict in verdicts:
        print(verdict.text(), file=sys.stderr if args.json else sys.stdout)
    records = [v.to_dict() for v in verdicts]
    if args.json_out:
        write_json_file(records, args.json_out)
    if args.json:
        print(json.dumps(records, indent=2))
    raise_on_failure(verdicts)
    return 0


def cmd_device_setup(args: argparse.Namespace) -> int:
    """``edgesmith device setup aarch64 [DIR]``."""
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.runtime.aarch64_env import ready_message, setup_aarch64
    from edgesmith.runtime.emulation import aarch64_env_dir

    folder = Path(args.directory) if args.directory else aarch64_env_dir()
    print(ready_message(folder, setup_aarch64(folder, report=stderr_reporter(args.quiet))))
    return 0
