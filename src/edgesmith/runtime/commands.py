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

from edgesmith.core.cli_args import add_command, add_settings, config_from_args, given_settings
from edgesmith.runtime.bench import BenchConfig
from edgesmith.runtime.regression import CHECK_TIMING, CheckOptions
from edgesmith.runtime.timing import TimingPlan

HELP = "edgesmith.runtime"
STORE_HELP = (
    "bench document to FILE and the benched model files to its store folder beside it (the "
    "baseline for edgesmith check)"
)


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
    _outputs(check, "the verdicts", "verdicts as JSON to FILE")

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
    """``--json``, ``--json-out``, ``--overwrite`` and ``--quiet``, worded alike on both."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout")
    parser.add_argument("--json-out", metavar="FILE", help=f"write the {json_out}")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace output files edgesmith did not write (by default refused, exit 2)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def claim_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, to write over a file edgesmith did not write or through a link.

    ``--overwrite`` replaces such files (never folders or links); files edgesmith wrote and
    nobody changed since are replaced without it.

    Raises:
        EdgesmithError: naming the flag and the first path that is not ours to replace.
    """
    from edgesmith.core.outputs import check_files_writable

    for flag, value in (("--json-out", args.json_out), ("--report", getattr(args, "report", None))):
        if value:
            check_files_writable([Path(value)], overwrite=args.overwrite, flag=flag)
    if getattr(args, "plots", None):
        from edgesmith.runtime.plots import PLOT_FILES

        plots = [Path(args.plots) / name for name in PLOT_FILES]
        check_files_writable(plots, overwrite=args.overwrite, flag="--plots")


def cmd_bench(args: argparse.Namespace) -> int:
    """``edgesmith bench``."""
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.runtime.bench_run import (
        NOT_WITH_EMULATE,
        bench_config,
        bench_summary,
        run_bench,
        write_bench_outputs,
    )
    from edgesmith.runtime.source import expand_paths

    claim_outputs(args)
    profile = None
    if args.device:
        from edgesmith.core.profiles import load_profile

        profile = load_profile(args.device)
    config = bench_config(
        given_settings(args, BenchConfig),
        given_settings(args, TimingPlan),
        profile,
        allow_delegate=args.allow_delegate,
    )
    if config.emulate is not None and args.plots:
        from edgesmith.core.errors import EdgesmithError

        raise EdgesmithError(f"--plots {NOT_WITH_EMULATE}")
    report = stderr_reporter(args.quiet)
    run = run_bench(
        expand_paths(args.paths), data=args.data, config=config, profile=profile, report=report
    )
    for record in run.document.results:  # fall-backs and missing metadata: even with --quiet
        for note in record.notes:
            print(f"edgesmith: note: {note}", file=sys.stderr)
    write_bench_outputs(
        run, json_out=args.json_out, markdown_out=args.report, plots_dir=args.plots, report=report
    )
    if args.json:
        print(json.dumps(run.document.to_dict(), indent=2))
    print(bench_summary(run.document, profile), file=sys.stderr if args.json else sys.stdout)
    if profile is not None:
        from edgesmith.runtime.budgets import raise_over_budget

        raise_over_budget(run.document.results, profile.name)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``edgesmith check``."""
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.runtime.bench_run import write_json_file
    from edgesmith.runtime.regression import check, raise_on_failure
    from edgesmith.runtime.source import expand_paths

    claim_outputs(args)
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
    from edgesmith.runtime.aarch64_env import launcher_path, setup_aarch64
    from edgesmith.runtime.emulation import AARCH64_ENV_VARIABLE, aarch64_env_dir

    folder = Path(args.directory) if args.directory else aarch64_env_dir()
    env = setup_aarch64(folder, report=stderr_reporter(args.quiet))
    print(f"aarch64 environment ready: {folder} ({env.cpu})")
    if folder.resolve() != aarch64_env_dir().resolve():
        print(f"use it with: export {AARCH64_ENV_VARIABLE}={folder.resolve()}")
    print("then: edgesmith bench MODEL --data SPEC --emulate aarch64")
    print(f"or, as a device over SSH: --remote-edgesmith {launcher_path(folder)}")
    return 0
