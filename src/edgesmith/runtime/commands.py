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

from edgesmith.core.cli_args import count, formatter, positive_int, seconds
from edgesmith.core.errors import EdgesmithError

BENCH_EPILOG = """\
examples:
  edgesmith bench runs/export/tflite-int8 runs/export/onnx --data digits
  edgesmith bench model.tflite --data cifar10 --threads 1 --affinity 1 --json-out bench.json
  edgesmith bench a.tflite b.onnx --data digits --report bench.md --plots plots/
  edgesmith bench model.tflite --device cpu-x86 --data digits   (exit 1 when over a budget)
  edgesmith bench model.tflite --json | jq '.results[0].latency_ms.p50'
  edgesmith bench foreign.tflite            (no data: seeded noise as input, no accuracy)

Timing follows TFLite's benchmark_model and MLPerf: warm-up runs and a time floor, then at least
--min-runs runs and --min-seconds seconds per model; several models are timed in interleaved
rounds so that drift on a shared machine hits all alike. Accuracy is measured afterwards through
the same runner. --json-out FILE writes the bench document (schema edgesmith.bench, version 2),
the baseline format of edgesmith check, and copies each benched model file into FILE's store
folder beside it (bench.json -> bench.models/<sha256>.tflite), so that check can re-measure the
very file the numbers came from; --json prints the document on stdout (no store).

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

exit codes: 0 compared and no regression, 1 regression or not compared, 2 bad input
(a malformed baseline, NaN/negative/absurd numbers, limits out of range)
"""


def _model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="artifact directories or .tflite/.onnx files"
    )


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``bench`` and ``check`` to the ``edgesmith`` command's sub-parsers."""
    from edgesmith.core.datasets import SPEC_HELP

    bench = commands.add_parser(
        "bench",
        formatter_class=formatter,
        help="measure latency, throughput, size and accuracy of exported models",
        description="Benchmark .tflite/.onnx models on this machine: load time, first "
        "inference,\nlatency percentiles, throughput, GMAC/s, peak memory and accuracy.",
        epilog=BENCH_EPILOG + "\n" + SPEC_HELP,
    )
    _model_flags(bench)
    bench.add_argument(
        "--data", metavar="SPEC", help="data spec for inputs and accuracy (default: none)"
    )
    bench.add_argument(
        "--device",
        metavar="PROFILE",
        help="device profile (shipped name or YAML): its provider, threads and affinity, "
        "and a verdict on its budgets; flags override it",
    )
    bench.add_argument(
        "--threads", type=positive_int, metavar="N", help="runtime threads (default: 1)"
    )
    bench.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        metavar="B",
        help="images per timed inference (default: 1)",
    )
    bench.add_argument(
        "--min-runs",
        type=count,
        default=1000,
        metavar="N",
        help="timed runs per model (default: 1000)",
    )
    bench.add_argument(
        "--min-seconds",
        type=seconds,
        default=10.0,
        metavar="S",
        help="timed seconds per model (default: 10)",
    )
    bench.add_argument("--warmup-runs", type=count, default=10, metavar="N", help="default: 10")
    bench.add_argument(
        "--warmup-seconds", type=seconds, default=0.5, metavar="S", help="default: 0.5"
    )
    bench.add_argument(
        "--affinity", metavar="CPUS", help="pin to CPUs, taskset style: 0 | 0,1 | 0-3"
    )
    bench.add_argument(
        "--provider",
        metavar="P",
        help="onnx: cpu|cuda|tensorrt|auto (cuda/tensorrt fail where absent; auto takes the "
        "best present); tflite: cpu|xnnpack|delegate:/path/lib.so|compiled|compiled:gpu|tflm "
        "(tflm: TFLite Micro's interpreter, measured arena, host reference-kernel latency; "
        "default: cpu)",
    )
    bench.add_argument(
        "--allow-delegate",
        action="store_true",
        help="load the delegate library the --device profile names (native code; a "
        "--provider delegate:PATH on the command line needs no such flag)",
    )
    bench.add_argument(
        "--no-xnnpack",
        action="store_true",
        default=None,
        help="LiteRT builtin kernels instead of XNNPACK",
    )
    bench.add_argument(
        "--normalization",
        metavar="NORM",
        help="for files without edgesmith metadata (e.g. MLCommons' ResNet-8): how pixels "
        "0..255 map to the model input: raw, unit or scale=S,mean=..,std=..",
    )
    bench.add_argument(
        "--eval-batch", type=positive_int, default=64, metavar="B", help="images per accuracy call"
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
    _model_flags(check)
    check.add_argument("--baseline", required=True, metavar="FILE", help="bench JSON to beat")
    check.add_argument(
        "--max-slowdown",
        type=float,
        default=1.10,
        metavar="R",
        help="allowed latency ratio (default: 1.10 = 10%% slower)",
    )
    check.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=1.0,
        metavar="POINTS",
        help="allowed accuracy drop in percentage points, 0..100 (default: 1.0 = one point)",
    )
    check.add_argument(
        "--min-runs",
        type=count,
        default=500,
        metavar="N",
        help="timed runs per model (default: 500)",
    )
    check.add_argument(
        "--min-seconds",
        type=seconds,
        default=5.0,
        metavar="S",
        help="timed seconds per model (default: 5)",
    )
    check.add_argument(
        "--data", metavar="SPEC", help="data for the accuracy check (default: the baseline's)"
    )
    check.add_argument(
        "--no-accuracy", action="store_true", help="gate latency only (no dataset needed)"
    )
    check.add_argument(
        "--any-machine",
        action="store_true",
        help="without the reference file, compare with the stored median of a baseline from "
        "another kind of machine anyway (it can catch a regression, not pass one)",
    )
    check.add_argument(
        "--allow-skip",
        action="store_true",
        help="pass comparisons that cannot be made (no reference file, another machine, no "
        "accuracy in the baseline, too noisy) instead of exiting 1",
    )
    check.add_argument(
        "--provider",
        metavar="P",
        help="re-measure with this provider instead of the baseline's (required to use a "
        "baseline's delegate:/x.so: a baseline file never loads native code by itself)",
    )
    check.add_argument("--json", action="store_true", help="print the verdicts as JSON on stdout")
    check.add_argument("--json-out", metavar="FILE", help="write the verdicts as JSON to FILE")
    check.add_argument("--quiet", action="store_true", help="no progress lines")
    check.set_defaults(handler=cmd_check)


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
    except OSError as exc:
        raise EdgesmithError(f"cannot write {target}: {exc.strerror or exc}") from None


def cmd_bench(args: argparse.Namespace) -> int:
    """``edgesmith bench``."""
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.runtime.bench import BenchConfig, benchmark
    from edgesmith.runtime.report import markdown, terminal_table
    from edgesmith.runtime.source import expand_paths
    from edgesmith.runtime.timing import TimingPlan

    report = stderr_reporter(args.quiet)
    args.paths = expand_paths(args.paths)
    profile = None
    settings = {"threads": 1, "provider": None, "xnnpack": True, "affinity": None}
    if args.device:
        from edgesmith.core.profiles import load_profile

        profile = load_profile(args.device)
        settings.update(profile.runtime_options(allow_delegate=args.allow_delegate))
        if profile.affinity:
            settings["affinity"] = ",".join(str(core) for core in profile.affinity)
        check_profile_formats(args.paths, profile)
    given = {
        "threads": args.threads,
        "provider": args.provider,
        "xnnpack": None if args.no_xnnpack is None else False,
        "affinity": args.affinity,
    }
    settings.update({k: v for k, v in given.items() if v is not None})
    plan = TimingPlan(
        min_runs=args.min_runs,
        min_seconds=args.min_seconds,
        warmup_runs=args.warmup_runs,
        warmup_seconds=args.warmup_seconds,
    )
    config = BenchConfig(
        threads=settings["threads"],
        batch=args.batch,
        provider=settings["provider"],
        xnnpack=settings["xnnpack"],
        affinity=settings["affinity"],
        eval_batch=args.eval_batch,
        timing=plan,
        foreign_normalization=args.normalization,
    )
    if args.data is not None:
        from edgesmith.core.datasets import parse_spec

        parse_spec(args.data)  # a typo fails now, not after the models load
    run = benchmark(args.paths, data=args.data, config=config, report=report)
    for record in run.results:  # fall-backs and missing metadata are shown even with --quiet
        for note in record.get("notes") or []:
            print(f"edgesmith: note: {note}", file=sys.stderr)
    budget_lines = []
    if profile is not None:
        from edgesmith.runtime.budgets import budget_verdicts, describe
        from edgesmith.runtime.report import display_name

        run.document["device"] = profile.to_dict()
        for record in run.results:
            record["budgets"] = budget_verdicts(record, profile.budgets.to_dict())
            budget_lines.append(describe(display_name(record, run.results), record["budgets"]))
    plots = []
    if args.plots:
        from edgesmith.runtime.plots import INSTALL_HINT, plots_available, write_plots

        if plots_available():
            plots = write_plots(run.document, run.rounds, args.plots)
            report(f"plots: {', '.join(str(p) for p in plots)}")
        else:
            print(f"edgesmith: note: plots skipped: {INSTALL_HINT}", file=sys.stderr)
    if args.json_out:
        from edgesmith.runtime.bench import save_baseline

        save_baseline(run.document, args.json_out)
    if args.json:
        write_json(run.document, "-")
    if args.report:
        path = Path(args.report)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(markdown(run.document, plots, base=path.parent), encoding="utf-8")
        except OSError as exc:
            raise EdgesmithError(f"cannot write {path}: {exc.strerror or exc}") from None
    table = terminal_table(run.document)
    out = sys.stderr if args.json else sys.stdout
    print(table, file=out)
    if profile is not None:
        print(f"device {profile.name}:", file=out)
        for line in budget_lines:
            print(f"  {line}", file=out)
        raise_over_budget(run.results, profile.name)
    return 0


def raise_over_budget(results: list[dict], device: str) -> None:
    """Exit 1 (:class:`CheckFailed`, like every failed check) when a model misses a budget.

    A budget that could not be measured (accuracy without ``--data``) is reported, not failed.

    Raises:
        CheckFailed: naming the models over budget.
    """
    from edgesmith.core.errors import CheckFailed
    from edgesmith.runtime.report import display_name

    over = [
        display_name(record, results)
        for record in results
        if any(v["ok"] is False for v in (record.get("budgets") or {}).values())
    ]
    if over:
        raise CheckFailed(
            f"{len(over)} of {len(results)} model(s) over the budgets of device {device}: "
            + ", ".join(over)
        )


def check_profile_formats(paths: list[str], profile) -> None:
    """Refuse models a profile's runtime cannot run (a .onnx file for a LiteRT device).

    Raises:
        EdgesmithError: naming the file and the profile's runtime.
    """
    from edgesmith.runtime.source import locate

    wanted = "tflite" if profile.runtime == "litert" else "onnx"
    for path in paths:
        fmt = locate(path).format
        if fmt != wanted:
            raise EdgesmithError(
                f"device {profile.name} runs {profile.runtime} ({wanted} files); {path} is {fmt}"
            )


def cmd_check(args: argparse.Namespace) -> int:
    """``edgesmith check``."""
    import dataclasses

    from edgesmith.core.progress import stderr_reporter
    from edgesmith.runtime.regression import CHECK_TIMING, check, raise_on_failure
    from edgesmith.runtime.source import expand_paths

    plan = dataclasses.replace(CHECK_TIMING, min_runs=args.min_runs, min_seconds=args.min_seconds)
    verdicts = check(
        expand_paths(args.paths),
        args.baseline,
        max_slowdown=args.max_slowdown,
        max_accuracy_drop=args.max_accuracy_drop,
        plan=plan,
        any_machine=args.any_machine,
        report=stderr_reporter(args.quiet),
        data=args.data,
        skip_accuracy=args.no_accuracy,
        allow_skip=args.allow_skip,
        provider=args.provider,
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
