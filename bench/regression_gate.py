"""Regression gate power and false-alarm rate on this (noisy, shared) machine.

Each trial re-measures a candidate against a reference, interleaved in one process, exactly as
``edgesmith check`` does when the baseline's model file is at hand (``compare_latency`` with the
same timing plan and verdict rule), with ``--max-slowdown 1.10``:

- slowed trials: the candidate is the same model with a **deterministic 15% slowdown injected**:
  its timed call runs the real inference and then busy-waits (``perf_counter`` spin, no sleep)
  for 15% of the reference's median latency, calibrated afresh at the start of each trial
  from 2,000 bare runs. Wall-clock spinning adds the same time whatever the scheduler does.
- unchanged trials: the candidate is the same file, loaded separately.

The issue asks for >= 19/20 detections and >= 19/20 clean passes.

    .venv/bin/python bench/regression_gate.py MODEL [--trials 20] [--min-seconds 5]

Writes bench/out/runtime/regression_gate_<model>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "runtime"
SLOWDOWN = 0.15


def slowed(step, extra_s: float):
    """The step, then a spin of ``extra_s`` seconds of wall time."""
    clock = time.perf_counter

    def run():
        step()
        end = clock() + extra_s
        while clock() < end:
            pass

    return run


def calibrate(step, runs: int = 2000) -> float:
    for _ in range(50):
        step()
    clock = time.perf_counter_ns
    samples = np.empty(runs)
    for i in range(runs):
        t0 = clock()
        step()
        samples[i] = clock() - t0
    return float(np.median(samples)) / 1e9


def trial(given: str, inject: bool, plan, max_slowdown: float, x_pixels) -> dict:
    import edgesmith.runtime as rt
    from edgesmith.runtime.regression import compare_latency

    candidate = rt.load(given, threads=1)
    reference = rt.load(given, threads=1)
    cand_step = candidate.runner.step(candidate.prepare(x_pixels))
    ref_step = reference.runner.step(reference.prepare(x_pixels))
    extra = 0.0
    if inject:
        extra = SLOWDOWN * calibrate(ref_step)
        cand_step = slowed(cand_step, extra)
    estimate, status = compare_latency(cand_step, ref_step, plan=plan, max_slowdown=max_slowdown)
    return {
        "injected": inject,
        "extra_ms": extra * 1e3,
        "ratio": estimate.ratio,
        "low": estimate.low,
        "high": estimate.high,
        "rounds": estimate.rounds,
        "status": status,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="artifact directory or model file")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--min-runs", type=int, default=500, help="edgesmith check's default")
    parser.add_argument("--min-seconds", type=float, default=5.0, help="edgesmith check's default")
    parser.add_argument("--max-slowdown", type=float, default=1.10)
    args = parser.parse_args()

    import dataclasses

    import edgesmith.runtime as rt
    from edgesmith.runtime.regression import CHECK_TIMING

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    plan = dataclasses.replace(CHECK_TIMING, min_runs=args.min_runs, min_seconds=args.min_seconds)
    probe = rt.load(args.model)
    shape = tuple(probe.input_tensor.shape[1:])
    pixels = np.random.default_rng(0).integers(0, 256, size=(1, *shape), dtype=np.uint8)
    results = []
    started = time.perf_counter()
    for i in range(args.trials):
        for inject in (True, False):  # alternate, so both see the same machine over time
            r = trial(args.model, inject, plan, args.max_slowdown, pixels)
            results.append(r)
            print(
                f"trial {i + 1:2d} {'slowed ' if inject else 'same   '} ratio {r['ratio']:.3f} "
                f"CI {r['low']:.3f}-{r['high']:.3f} ({r['rounds']} rounds) -> {r['status']}",
                flush=True,
            )
    slowed_trials = [r for r in results if r["injected"]]
    same_trials = [r for r in results if not r["injected"]]
    detected = sum(r["status"] == "regression" for r in slowed_trials)
    false_alarms = sum(r["status"] == "regression" for r in same_trials)
    summary = {
        "model": args.model,
        "trials": args.trials,
        "plan": plan.to_dict(),
        "max_slowdown": args.max_slowdown,
        "detected": detected,
        "false_alarms": false_alarms,
        "slowed_ratio_median": float(np.median([r["ratio"] for r in slowed_trials])),
        "same_ratio_median": float(np.median([r["ratio"] for r in same_trials])),
        "same_ratio_range": [
            float(min(r["ratio"] for r in same_trials)),
            float(max(r["ratio"] for r in same_trials)),
        ],
        "slowed_ratio_range": [
            float(min(r["ratio"] for r in slowed_trials)),
            float(max(r["ratio"] for r in slowed_trials)),
        ],
        "minutes": (time.perf_counter() - started) / 60,
        "results": results,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    name = Path(args.model).name
    (OUT / f"regression_gate_{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"detected {detected}/{args.trials} injected 15% slowdowns; "
        f"{false_alarms}/{args.trials} false alarms on the unchanged model "
        f"({summary['minutes']:.1f} min)"
    )
    ok = detected >= args.trials - 1 and false_alarms <= 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
