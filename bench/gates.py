"""Gates you can trust: the regression gate's power and false alarms, the parity gate's verdicts.

``regression``: trials of ``edgesmith check``'s latency gate at ``--max-slowdown 1.10`` on
MLCommons' int8 ResNet-8, each trial with separately loaded model instances:

- injected slowdowns of +0% (the unchanged file), +5%, +10% and +15%: the candidate's timed call
  runs the real inference, then busy-waits (``perf_counter`` spin) for a time calibrated afresh
  in each trial so that the candidate's own median grows by that fraction (2,000-run medians,
  corrected twice by the slowdown actually produced);
- **direct**: ``compare_latency`` on a freshly loaded candidate and reference, as ``check`` does;
- **in-place**: the README's device-CI flow through ``check`` itself: ``bench model.tflite
  --json-out base.json`` once (which stores the file by sha256 beside the JSON), then per trial
  ``check model.tflite --baseline base.json`` with the slowdown injected into the candidate's
  step (the reference comes from the store, found by sha256);
- **in-place, float file**: the same flow with model.tflite replaced by MLCommons' float model
  (3.3x slower on the machine of the issue).

A trial "fails" when the gate exits 1 (a regression, or too noisy to call: the gate fails
closed). ``parity``: verdicts of the export parity gate (``export/parity.py``) on good and
deliberately broken int8 files of a CIFAR-10 ResNet-8: MLCommons' int8 file against its float
model, and (with ``--export EXPORT``, an ``edgesmith export`` of a Keras ResNet-8 with tflite-fp32,
tflite-int8, onnx and onnx-int8) our own files against the tflite-fp32 file (the Keras model to
1e-4), plus an onnx-int8 file quantised with full 8-bit weights (``reduce_range=False``).

    EDGESMITH_DATA_DIR=DIR .venv/bin/python bench/gates.py regression [--trials 20] \\
        [--min-seconds 2] [--mlperf DIR/mlperf]
    EDGESMITH_DATA_DIR=DIR .venv/bin/python bench/gates.py parity [--export EXPORT] \\
        [--images 10000]

Reads edgesmith's data folder DIR (``$EDGESMITH_DATA_DIR``, else ``~/.cache/edgesmith/datasets``;
never copied): ``DIR/cifar10.npz`` and MLCommons' ``pretrainedResnet.tflite`` and
``pretrainedResnet_quant.tflite`` (github.com/mlcommons/tiny) in ``DIR/mlperf`` unless
``--mlperf`` names their folder. Writes bench/out/gates/{regression,parity}.json and prints
Markdown tables. One thread, pinned to one CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from mlperf_files import FLOAT, QUANT, add_mlperf_flag, missing_mlperf

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "gates"
SLOWDOWNS = (0.0, 0.05, 0.10, 0.15)


def spin_after(step, extra_s: float):
    """The step, then a busy-wait of ``extra_s`` seconds of wall time."""
    if extra_s <= 0:
        return step
    clock = time.perf_counter

    def run():
        step()
        end = clock() + extra_s
        while clock() < end:
            pass

    return run


def calibrate(step, runs: int = 2000) -> float:
    """The median seconds of ``runs`` bare calls, after 50 warm-up calls."""
    from edgesmith.runtime.timing import time_block

    for _ in range(50):
        step()
    return float(np.median(time_block(step, runs))) / 1e3


def calibrated_extra(step, fraction: float, runs: int = 2000) -> float:
    """Spin seconds that make ``step`` ``fraction`` slower than itself, measured, not assumed.

    A first guess (``fraction`` of the bare median) is corrected twice by the slowdown it
    actually produces, timed the way the gate times (``time_block``, the step's own instance).
    """
    if not fraction:
        return 0.0
    base = calibrate(step, runs)
    extra = fraction * base
    for _ in range(2):
        realized = calibrate(spin_after(step, extra), runs) / calibrate(step, runs) - 1.0
        if realized > 0:
            extra *= fraction / realized
    return extra


def direct_trial(model: Path, slowdown: float, plan, max_slowdown: float, pixels) -> dict:
    """compare_latency on two freshly loaded instances, the candidate slowed."""
    import edgesmith.runtime as rt
    from edgesmith.runtime.regression import compare_latency

    with (
        rt.load(model, threads=1, normalization="raw") as cand,
        rt.load(model, threads=1, normalization="raw") as ref,
    ):
        cand_step = cand.runner.step(cand.prepare(pixels))
        ref_step = ref.runner.step(ref.prepare(pixels))
        extra = calibrated_extra(cand_step, slowdown)
        estimate, status = compare_latency(
            spin_after(cand_step, extra), ref_step, plan=plan, max_slowdown=max_slowdown
        )
    return _record(slowdown, extra, estimate, status, status in ("regression", "noisy"))


@contextlib.contextmanager
def injected(candidate: Path, slowdown: float):
    """Make ``check`` open ``candidate`` with a calibrated slowdown after each timed call."""
    from edgesmith.runtime import regression

    original = regression.open_model
    seen = {}

    def open_model(given, config, pixels=None, spec=None):
        loaded = original(given, config, pixels, spec)
        if Path(given) == candidate and slowdown:
            seen["extra"] = calibrated_extra(loaded.step, slowdown)
            loaded.step = spin_after(loaded.step, seen["extra"])
        return loaded

    regression.open_model = open_model
    try:
        yield seen
    finally:
        regression.open_model = original


def in_place_trial(model: Path, baseline: Path, slowdown: float, plan, max_slowdown) -> dict:
    """``check model --baseline base.json`` (reference from the store), the candidate slowed."""
    from edgesmith.runtime.regression import check

    with injected(model, slowdown) as seen:
        (verdict,) = check(
            [model], baseline, timing=plan, max_slowdown=max_slowdown, skip_accuracy=True
        )
    record = _record(
        slowdown, seen.get("extra", 0.0), verdict.latency, verdict.latency_status, not verdict.ok
    )
    record["mode"] = verdict.mode
    return record


def _record(slowdown, extra, estimate, status, failed) -> dict:
    return {
        "slowdown": slowdown,
        "extra_ms": extra * 1e3,
        "ratio": estimate.ratio if estimate else None,
        "low": estimate.low if estimate else None,
        "high": estimate.high if estimate else None,
        "rounds": estimate.rounds if estimate else 0,
        "status": status,
        "failed": bool(failed),
    }


def regression_bench(args) -> dict:
    """All regression-gate trials; returns the summary document."""
    from edgesmith.app.cli import main as cli
    from edgesmith.runtime.regression import CHECK_TIMING

    plan = dataclasses.replace(CHECK_TIMING, min_runs=args.min_runs, min_seconds=args.min_seconds)
    quant, floating = args.mlperf / QUANT, args.mlperf / FLOAT
    pixels = np.random.default_rng(0).integers(0, 256, size=(1, 32, 32, 3), dtype=np.uint8)
    rows: dict[str, list[dict]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gates-") as tmp:
        model = Path(tmp) / "dir" / "model.tflite"
        model.parent.mkdir()
        shutil.copyfile(quant, model)
        base = Path(tmp) / "base.json"
        short = ["--min-runs", str(args.min_runs), "--min-seconds", str(args.min_seconds)]
        flags = ["--threads", "1", "--normalization", "raw", "--quiet", *short]
        assert cli(["bench", str(model), "--json-out", str(base), *flags]) == 0
        for trial in range(args.trials):
            for slowdown in SLOWDOWNS:  # interleaved, so every case sees the same machine
                for flow in ("direct", "in-place"):
                    if flow == "direct":
                        r = direct_trial(quant, slowdown, plan, args.max_slowdown, pixels)
                    else:
                        r = in_place_trial(model, base, slowdown, plan, args.max_slowdown)
                    rows.setdefault(f"{flow} +{slowdown:.0%}", []).append(r)
                    _say(trial, f"{flow} +{slowdown:.0%}", r)
            shutil.copyfile(floating, model)  # the README's flow: the float file replaces it
            try:
                r = in_place_trial(model, base, 0.0, plan, args.max_slowdown)
            finally:
                shutil.copyfile(quant, model)
            rows.setdefault("in-place, float file replaces int8", []).append(r)
            _say(trial, "in-place float", r)
    summary = {
        "model": str(quant),
        "trials": args.trials,
        "plan": plan.to_dict(),
        "max_slowdown": args.max_slowdown,
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "cases": {
            name: {
                "failed": sum(r["failed"] for r in rs),
                "trials": len(rs),
                "ratio_median": float(np.median([r["ratio"] for r in rs])),
                "ratio_range": [min(r["ratio"] for r in rs), max(r["ratio"] for r in rs)],
                "statuses": sorted({r["status"] for r in rs}),
                "results": rs,
            }
            for name, rs in rows.items()
        },
    }
    print("\n| case | exit 1 (of trials) | median ratio | ratio range | statuses |")
    print("|---|---:|---:|---|---|")
    for name, case in summary["cases"].items():
        low, high = case["ratio_range"]
        print(
            f"| {name} | {case['failed']}/{case['trials']} | {case['ratio_median']:.3f} | "
            f"{low:.3f}-{high:.3f} | {', '.join(case['statuses'])} |"
        )
    return summary


def _say(trial: int, name: str, r: dict) -> None:
    print(
        f"trial {trial + 1:2d} {name:14s} ratio {r['ratio']:.3f} CI {r['low']:.3f}-{r['high']:.3f}"
        f" -> {r['status']}{' (exit 1)' if r['failed'] else ''}",
        flush=True,
    )


def parity_cases(name, path, norm, wrong_norm, pixels, tmp: Path):
    """(case, outputs) for a good int8 file and its broken variants."""
    import edgesmith.runtime as rt
    from edgesmith.export.faults import negated_onnx, negated_tflite, requantized

    cases = []
    with rt.load(path, normalization=norm, threads=1) as model:
        cases.append((f"{name}: the file as published", model.predict(pixels)))
        if np.issubdtype(model.input_tensor.dtype, np.integer):
            cases.append((f"{name}: input scale x4", model.run(requantized(model, pixels, 4.0))))
            cases.append((f"{name}: input scale x0.5", model.run(requantized(model, pixels, 0.5))))
            cases.append(
                (f"{name}: zero point +128", model.run(requantized(model, pixels, 1.0, 128)))
            )
            cases.append(
                (f"{name}: zero point +16", model.run(requantized(model, pixels, 1.0, 16)))
            )
    with rt.load(path, normalization=wrong_norm, threads=1) as model:
        cases.append((f"{name}: wrong normalisation ({wrong_norm})", model.predict(pixels)))
    corrupt = tmp / f"corrupt{path.suffix}"
    negate = negated_tflite if path.suffix == ".tflite" else negated_onnx
    corrupt.write_bytes(negate(path.read_bytes()))
    with rt.load(corrupt, normalization=norm, threads=1) as model:
        cases.append((f"{name}: one weight tensor negated", model.predict(pixels)))
    return cases


def parity_bench(args) -> dict:
    """Parity verdicts on good and broken files; returns the summary document."""
    import edgesmith.runtime as rt
    from edgesmith.export.formats import QUANTIZED
    from edgesmith.export.parity import compare

    with np.load(args.cifar) as npz:
        pixels = npz["x_test"][: args.images]
        labels = npz["y_test"][: args.images].astype(np.int64)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gates-") as tmp:
        sources = []
        with rt.load(args.mlperf / FLOAT, normalization="raw") as ref:
            mlperf_ref = ref.predict(pixels)
        sources.append(("MLCommons tflite-int8", args.mlperf / QUANT, "raw", "unit"))
        refs = {"MLCommons tflite-int8": mlperf_ref}
        if args.export:
            export = Path(args.export)
            with rt.load(export / "tflite-fp32") as ref:
                ours = ref.predict(pixels)
            for fmt in ("tflite-int8", "onnx-int8"):
                sources.append((f"ours {fmt}", _model_file(export / fmt), None, "raw"))
                refs[f"ours {fmt}"] = ours
            full = _full_range_onnx_int8(export, Path(tmp), args.cifar)
            sources.append(("ours onnx-int8, 8-bit weights (old default)", full, None, "raw"))
            refs["ours onnx-int8, 8-bit weights (old default)"] = ours
        for name, path, norm, wrong in sources:
            for case, outputs in parity_cases(name, path, norm, wrong, pixels, Path(tmp)):
                m = compare(outputs, refs[name], labels, QUANTIZED, "probabilities")
                test = m["accuracy_test"]
                rows.append(
                    {
                        "case": case,
                        "accuracy": 100 * m["accuracy"],
                        "source_accuracy": 100 * m["source_accuracy_eval"],
                        "agreement": 100 * m["agreement"],
                        "drop_points": test["drop_points"],
                        "drop_interval_points": test["drop_interval_points"],
                        "p_value": test["p_value"],
                        "verdict": m["parity"],
                        "failures": m.get("parity_failures", []),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.images} CIFAR-10 test images; tolerance 1.0 point; McNemar exact p < 0.05\n")
    print("| file | accuracy % (source %) | agreement % | drop, points (95% CI) | p | verdict |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        low, high = r["drop_interval_points"]
        print(
            f"| {r['case']} | {r['accuracy']:.2f} ({r['source_accuracy']:.2f}) | "
            f"{r['agreement']:.2f} | {r['drop_points']:.2f} ({low:.2f} to {high:.2f}) | "
            f"{r['p_value']:.3g} | {r['verdict']} |"
        )
    return {"images": args.images, "rows": rows}


def _model_file(directory: Path) -> Path:
    (found,) = [p for p in directory.iterdir() if p.suffix in (".tflite", ".onnx")]
    return found


def _full_range_onnx_int8(export: Path, tmp: Path, cifar: Path) -> Path:
    """Re-quantise the exported float ONNX file with full 8-bit weights (the old setting)."""
    import onnx

    from edgesmith.core.artifacts import read_artifact
    from edgesmith.core.datasets import load_dataset
    from edgesmith.export.onnx_quant import quantize_static_qdq

    float_file = _model_file(export / "onnx")
    model = onnx.load(str(float_file))
    norm = read_artifact(export / "onnx-int8", verify=False).normalization
    data = load_dataset(f"npz:{cifar}?train=500&eval=1")
    calibration = norm.apply(data.x_train[:500]).astype(np.float32)
    quantised = quantize_static_qdq(model, calibration, reduce_range=False)
    published = onnx.load(str(_model_file(export / "onnx-int8")))
    del quantised.metadata_props[:]
    quantised.metadata_props.extend(published.metadata_props)  # the same preprocessing record
    target = tmp / "full-range.onnx"
    onnx.save(quantised, str(target))
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("regression", "parity"))
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--min-runs", type=int, default=500, help="edgesmith check's default")
    parser.add_argument("--min-seconds", type=float, default=5.0, help="check's default: 5")
    parser.add_argument("--max-slowdown", type=float, default=1.10)
    parser.add_argument("--export", metavar="EXPORT", help="an edgesmith export of a ResNet-8")
    parser.add_argument("--images", type=int, default=10_000)
    add_mlperf_flag(parser)
    args = parser.parse_args()
    from edgesmith.core.datasets.download import cache_dir

    args.cifar = cache_dir() / "cifar10.npz"  # at run time: $EDGESMITH_DATA_DIR as it is now
    args.mlperf, missing = missing_mlperf(args.mlperf)
    if args.part == "parity" and not args.cifar.is_file():
        missing.insert(0, f"{args.cifar} is not here; set EDGESMITH_DATA_DIR to its folder")
    if missing:
        print(f"gates: {missing[0]}", file=sys.stderr)
        return 2
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    OUT.mkdir(parents=True, exist_ok=True)
    document = regression_bench(args) if args.part == "regression" else parity_bench(args)
    (OUT / f"{args.part}.json").write_text(json.dumps(document, indent=1) + "\n")
    print(f"\nwrote {OUT / (args.part + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
