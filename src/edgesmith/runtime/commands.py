"""The runtime's sub-commands, ``edgesmith bench`` and ``edgesmith check``.

This module is imported whenever the CLI builds its parser, so it imports nothing heavy: the
runtimes load inside the handlers, and TensorFlow never.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from edgesmith.core.cli_args import add_settings, config_from_args, formatter, given_settings
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.outputs import record_written
from edgesmith.runtime.bench import BenchConfig
from edgesmith.runtime.regression import CHECK_TIMING, CheckOptions
from edgesmith.runtime.timing import TimingPlan

BENCH_EPILOG = """\
examples:
  edgesmith bench runs/export/tflite-int8 runs/export/onnx --data digits
  edgesmith bench model.tflite --data cifar10 --threads 1 --affinity 1 --json-out bench.json
  edgesmith bench a.tflite b.onnx --data digits --report bench.md --plots plots/
  edgesmith bench model.tflite --device cpu-x86 --data digits   (exit 1 when over a budget)
  edgesmith bench model.tflite --json | jq '.results[0].latency_ms.p50'
  edgesmith bench foreign.tflite            (no data: seeded noise as input, no accuracy)
  edgesmith bench model.onnx --data digits --emulate x86-64-avx2   (AVX2 without VNNI, qemu)
  edgesmith bench model.tflite --data digits --measure instructions   (valgrind counts)

Timing follows TFLite's benchmark_model and MLPerf: warm-up runs and a time floor, then at least
--min-runs runs and --min-seconds seconds per model; several models are timed in interleaved
rounds so that drift on a shared machine hits all alike. Accuracy is measured afterwards through
the same runner. --json-out FILE writes the bench document (schema edgesmith.bench, version 2),
the baseline format of edgesmith check, and copies each benched model file into FILE's store
folder beside it (bench.json -> bench.models/<sha256>.tflite), so that check can re-measure the
very file the numbers came from; --json prints the document on stdout (no store).

--emulate TARGET runs the same bench in a child Python under qemu-user (x86-64-avx2: qemu-x86_64
-cpu Haswell, AVX2 without VNNI; needs Debian's qemu-user-static): accuracy is what the target's
kernels give, the latency is the emulator's wall-clock and is labelled so in the document.
--measure instructions also counts instructions per inference with valgrind's callgrind
(Debian's valgrind), inside the inference loop only: the same in every run, so a 2% change
shows, where wall-clock on a shared machine moves by more; it compares like with like only.

exit codes: 0 done (and within the --device budgets), 1 a model is over a budget, 2 bad input
"""

CHECK_EPILOG = """\
examples:
  edgesmith bench model.tflite --data digits --json-out baseline.json  (record a baseline;
      writes baseline.json and baseline.models/, keep both)
  edgesmith check model.tflite --baseline baseline.json     (after replacing model.tflite)
  edgesmith check new/model.tflite --baseline baseline.json --max-slowdown 1.05 \\
      --max-accuracy-drop 0.5
  edgesmith check new/model.tflite --baseline baseline.json --no-accuracy --json-out v.json
  edgesmith check new/model.tflite --baseline baseline.json --measure instructions \
      --max-increase 1.02                                    (deterministic; needs valgrind)

How it decides: the baseline's model file is found by its sha256 in the store folder beside
the baseline (or at its recorded path if its content still matches; a file whose sha256
differs is never used). Candidate and reference are timed side by side in interleaved rounds
and the median latency ratio gets a 95% bootstrap confidence interval over the paired rounds.
Latency fails when the ratio exceeds --max-slowdown and the interval lies above 1.0; accuracy
fails when it dropped by more than --max-accuracy-drop percentage points.

It fails closed: a comparison that cannot be made exits 1, saying why: no reference file
(the stored median can still catch a regression, never pass one), a baseline from another
kind of machine (CPU model, ISA class, cores, runtime versions; not the kernel release), a
baseline without accuracy, or a ratio above the limit whose interval reaches 1.0 (noisy).
--allow-skip turns those into a pass; --no-accuracy gates latency only. A baseline whose
provider loads native code (delegate:/x.so) is refused unless a --provider is given.

--measure instructions gates instructions per inference instead of latency: both files are
counted here under valgrind's callgrind at one thread, inside the inference loop only, and the
check fails when the ratio exceeds --max-increase. A count is the same in every run, so a 2%
change is seen where wall-clock noise hides it; it compares like with like only (a float file
swapped for an int8 one may run fewer instructions and still be slower: wall-clock's job).
Without the reference file the baseline's own count (bench --measure instructions) stands in
when it was taken on the same kind of machine.

exit codes: 0 compared and no regression, 1 regression or not compared, 2 bad input
(a malformed baseline, NaN/negative/absurd numbers, limits out of range)
"""


DEVICE_EPILOG = """\
examples:
  edgesmith device setup aarch64                      (into ~/.cache/edgesmith/aarch64)
  edgesmith device setup aarch64 /var/tmp/arm64 && export EDGESMITH_AARCH64_ENV=/var/tmp/arm64
  edgesmith bench model.tflite --data digits --emulate aarch64

Needs Debian's debootstrap and qemu-user-static (apt-get install debootstrap qemu-user-static),
a Debian mirror and PyPI; about a minute and 470 MB. No root: the emulated CPU's /proc/cpuinfo
lies in the env's root, which qemu-aarch64's -L prefix serves to the guest.

exit codes: 0 ready, 2 a missing tool, a folder that is not an env, or a failed step
"""


def cmd_device_setup(args: argparse.Namespace) -> int:
    """``edgesmith device setup aarch64 [DIR]``."""
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.runtime.aarch64_env import setup_aarch64
    from edgesmith.runtime.emulation import AARCH64_ENV_VARIABLE, aarch64_env_dir

    folder = Path(args.directory) if args.directory else aarch64_env_dir()
    env = setup_aarch64(folder, report=stderr_reporter(args.quiet))
    print(f"aarch64 environment ready: {folder} ({env.cpu})")
    if folder.resolve() != aarch64_env_dir().resolve():
        print(f"use it with: export {AARCH64_ENV_VARIABLE}={folder.resolve()}")
    print("then: edgesmith bench MODEL --data SPEC --emulate aarch64")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``bench``, ``check`` and ``device`` to the ``edgesmith`` command's sub-parsers."""
    from edgesmith.core.datasets import SPEC_HELP

    bench = commands.add_parser(
        "bench",
        formatter_class=formatter,
        help="measure latency, throughput, size and accuracy of exported models",
        description="Benchmark .tflite/.onnx models on this machine: load time, first "
        "inference,\nlatency percentiles, throughput, GMAC/s, peak memory and accuracy.",
        epilog=BENCH_EPILOG + "\n" + SPEC_HELP,
    )
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
    bench.add_argument(
        "--json", action="store_true", help="print the bench document as JSON on stdout"
    )
    bench.add_argument(
        "--json-out",
        metavar="FILE",
        help="write the bench document to FILE and the benched model files to its store "
        "folder beside it (the baseline for edgesmith check)",
    )
    bench.add_argument("--report", metavar="FILE", help="write a Markdown report")
    bench.add_argument("--plots", metavar="DIR", help="write PNG plots (needs matplotlib)")
    _overwrite(bench)
    bench.add_argument("--quiet", action="store_true", help="no progress lines")
    bench.set_defaults(handler=cmd_bench)

    check = commands.add_parser(
        "check",
        formatter_class=formatter,
        help="fail (exit 1) when a model is slower or less accurate than a baseline",
        description="Gate latency and accuracy regressions against a baseline written by\n"
        "edgesmith bench --json-out, with a confidence interval rather than one noisy\n"
        "number. Fails closed: a comparison it cannot make exits 1 unless --allow-skip.",
        epilog=CHECK_EPILOG,
    )
    _paths(check)
    check.add_argument("--baseline", required=True, metavar="FILE", help="bench JSON to beat")
    add_settings(check, CheckOptions)
    add_settings(check, TimingPlan, skip=("warmup_runs", "warmup_seconds"), defaults=CHECK_TIMING)
    check.add_argument("--json", action="store_true", help="print the verdicts as JSON on stdout")
    check.add_argument("--json-out", metavar="FILE", help="write the verdicts as JSON to FILE")
    _overwrite(check)
    check.add_argument("--quiet", action="store_true", help="no progress lines")
    check.set_defaults(handler=cmd_check)

    device = commands.add_parser(
        "device",
        formatter_class=formatter,
        help="make an emulated device environment (for bench --emulate aarch64)",
        description="Make the environment an emulated target runs in.",
        epilog=DEVICE_EPILOG,
    )
    actions = device.add_subparsers(dest="action", metavar="ACTION", required=True)
    setup = actions.add_parser(
        "setup",
        formatter_class=formatter,
        help="make (or finish) an emulated device environment",
        description="Make an aarch64 (Cortex-A72) Python with the runtime's aarch64 wheels, "
        "run under qemu-aarch64: a Debian bookworm arm64 root (debootstrap) and pip's "
        "aarch64 wheels. Resumable: a half-made folder is finished, a finished one returns "
        "at once.",
        epilog=DEVICE_EPILOG,
    )
    setup.add_argument("target", choices=("aarch64",), metavar="TARGET", help="aarch64")
    setup.add_argument(
        "directory",
        nargs="?",
        metavar="DIR",
        help="the env folder (default: $EDGESMITH_AARCH64_ENV, else ~/.cache/edgesmith/aarch64)",
    )
    setup.add_argument("--quiet", action="store_true", help="no progress lines")
    setup.set_defaults(handler=cmd_device_setup)


def _overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace output files edgesmith did not write (by default refused, exit 2)",
    )


def _paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="artifact directories or .tflite/.onnx files"
    )


def claim_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, to write over a file edgesmith did not write or through a link.

    ``--overwrite`` replaces such files (never folders or links); files edgesmith wrote and
    nobody changed since are replaced without it.

    Raises:
        EdgesmithError: naming the flag and the first path that is not ours to replace.
    """
    from edgesmith.core.outputs import check_files_writable

    overwrite = args.overwrite
    for flag, value in (("--json-out", args.json_out), ("--report", getattr(args, "report", None))):
        if value:
            check_files_writable([Path(value)], overwrite=overwrite, flag=flag)
    if getattr(args, "plots", None):
        from edgesmith.runtime.plots import PLOT_FILES

        plots = [Path(args.plots) / name for name in PLOT_FILES]
        check_files_writable(plots, overwrite=overwrite, flag="--plots")


def write_json(document: object, target: str) -> None:
    """Write JSON to a file (atomically: temp file then rename), or to stdout for ``-``.

    Raises:
        EdgesmithError: when the file cannot be written.
    """
    text = json.dumps(document, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return
    path = Path(target)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        record_written(path)
    except OSError as exc:
        raise EdgesmithError(f"cannot write {target}: {exc.strerror or exc}") from None


def bench_config(args: argparse.Namespace, profile=None) -> BenchConfig:
    """The run's settings: the defaults, then the ``--device`` profile's, then the flags."""
    values = {}
    if profile is not None:
        values.update(profile.runtime_options(allow_delegate=args.allow_delegate))
        if profile.affinity:
            values["affinity"] = ",".join(str(core) for core in profile.affinity)
    values["timing"] = TimingPlan().replace(**given_settings(args, TimingPlan))
    return BenchConfig.from_dict({**values, **given_settings(args, BenchConfig)})


EMULATED_TIMING = TimingPlan(min_runs=5, min_seconds=0.0, warmup_runs=1, warmup_seconds=0.0)
"""An emulated latency is not the device's, so by default it is timed only briefly."""


def emulated_config(args: argparse.Namespace, config: BenchConfig) -> BenchConfig:
    """The settings for an emulated bench: brief timing unless asked, and what cannot combine.

    Raises:
        EdgesmithError: for ``--emulate`` with ``--device``, ``--plots`` or ``--measure
            instructions`` (an emulated latency judges no budget, and counts are the host's).
    """
    from edgesmith.core.cli_args import refuse_flags

    refuse_flags(
        args,
        {"device": "--device", "plots": "--plots"},
        "with --emulate (an emulated latency is the emulator's, not the device's)",
    )
    if config.measure == "instructions":
        raise EdgesmithError(
            "--measure instructions counts on this machine with valgrind; drop --emulate, or "
            "--measure latency for an emulated run"
        )
    if not given_settings(args, TimingPlan):
        config = config.replace(timing=EMULATED_TIMING)
    return config


def with_instructions(document, config: BenchConfig, data: str | None, report):
    """The document with each result's instructions per inference counted (valgrind)."""
    import dataclasses

    from edgesmith.runtime.instructions import count_instructions

    counts = count_instructions(
        [result.model_file for result in document.results], config, data=data, report=report
    )
    results = tuple(
        dataclasses.replace(result, instructions=counted)
        for result, counted in zip(document.results, counts, strict=True)
    )
    return document.replace(results=results)


def cmd_bench(args: argparse.Namespace) -> int:
    """``edgesmith bench``."""
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.runtime.bench import benchmark
    from edgesmith.runtime.report import markdown, terminal_table
    from edgesmith.runtime.source import expand_paths

    report = stderr_reporter(args.quiet)
    claim_outputs(args)
    args.paths = expand_paths(args.paths)
    profile = None
    if args.device:
        from edgesmith.core.profiles import load_profile
        from edgesmith.runtime.budgets import check_profile_formats

        profile = load_profile(args.device)
        check_profile_formats(args.paths, profile)
    config = bench_config(args, profile)
    if config.emulate is not None:
        config = emulated_config(args, config)
    if config.measure == "instructions":
        from edgesmith.runtime.instructions import check_countable

        check_countable(config)
    if args.data is not None:
        from edgesmith.core.datasets import parse_spec

        parse_spec(args.data)  # a typo fails now, not after the models load
    if config.emulate is not None:
        from edgesmith.runtime.emulation import emulated_benchmark

        document = emulated_benchmark(
            args.paths, target=config.emulate, data=args.data, config=config, report=report
        )
        run = None
    else:
        run = benchmark(args.paths, data=args.data, config=config, report=report)
        document = run.document
    for record in document.results:  # fall-backs and missing metadata are shown even with --quiet
        for note in record.notes:
            print(f"edgesmith: note: {note}", file=sys.stderr)
    if config.measure == "instructions":
        document = with_instructions(document, config, args.data, report)
    if profile is not None:
        from edgesmith.runtime.budgets import judge

        document = judge(document, profile)
    plots = []
    if args.plots:
        from edgesmith.runtime.plots import INSTALL_HINT, plots_available, write_plots

        if plots_available() and run is not None:
            plots = write_plots(document, run.rounds, args.plots)
            report(f"plots: {', '.join(str(p) for p in plots)}")
        else:
            print(f"edgesmith: note: plots skipped: {INSTALL_HINT}", file=sys.stderr)
    if args.json_out:
        from edgesmith.runtime.bench import save_baseline

        save_baseline(document, args.json_out)
    if args.json:
        write_json(document.to_dict(), "-")
    if args.report:
        path = Path(args.report)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(markdown(document, plots, base=path.parent), encoding="utf-8")
            record_written(path)
        except OSError as exc:
            raise EdgesmithError(f"cannot write {path}: {exc.strerror or exc}") from None
    out = sys.stderr if args.json else sys.stdout
    print(terminal_table(document), file=out)
    if document.emulation is not None:
        print(f"{document.emulation.emulator}: {document.emulation.note}", file=out)
    for result in document.results:
        if result.instructions is not None:
            print(
                f"{result.path}: {result.instructions.per_inference:,.0f} instructions per "
                f"inference ({result.instructions.tool}; counted, not timed)",
                file=out,
            )
    if profile is not None:
        from edgesmith.runtime.budgets import describe_all, raise_over_budget

        print(describe_all(document, profile.name), file=out)
        raise_over_budget(document.results, profile.name)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``edgesmith check``."""
    from edgesmith.core.progress import stderr_reporter
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
    out = sys.stderr if args.json else sys.stdout
    for verdict in verdicts:
        print(verdict.text(), file=out)
    records = [v.to_dict() for v in verdicts]
    if args.json_out:
        write_json(records, args.json_out)
    if args.json:
        write_json(records, "-")
    raise_on_failure(verdicts)
    return 0
