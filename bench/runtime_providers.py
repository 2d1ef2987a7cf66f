"""LiteRT execution paths side by side: Interpreter+XNNPACK, builtin kernels, CompiledModel.

Each .tflite file is loaded three ways through ``edgesmith.runtime.load`` and the three are timed
in interleaved rounds (``edgesmith.runtime.timing.measure``), 1 thread, batch 1, so that the
comparison survives a shared machine. Medians and p90 are printed.

    .venv/bin/python bench/runtime_providers.py MODEL.tflite... [--runs 2000] [--seconds 5]

Writes bench/out/runtime/providers.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "runtime"
WAYS = (
    ("interpreter+xnnpack", {"provider": "cpu", "xnnpack": True}),
    ("interpreter builtin", {"provider": "cpu", "xnnpack": False}),
    ("compiled (CPU)", {"provider": "compiled"}),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help=".tflite files or their artifact directories")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    import edgesmith.runtime as rt
    from edgesmith.runtime.stats import summarize
    from edgesmith.runtime.timing import TimingPlan, measure

    plan = TimingPlan(min_runs=args.runs, min_seconds=args.seconds)
    rows = []
    for given in args.models:
        models = [rt.load(given, threads=1, **options) for _, options in WAYS]
        shape = models[0].input_tensor.shape[1:]
        pixels = np.random.default_rng(0).integers(0, 256, size=(1, *shape), dtype=np.uint8)
        steps = [m.runner.step(m.prepare(pixels)) for m in models]
        rounds = measure(steps, plan)
        base = None
        for (name, _), model, blocks in zip(WAYS, models, rounds, strict=True):
            stats = summarize(np.concatenate(blocks))
            base = base or stats["p50"]
            row = {"model": given, "way": name, "provider": model.provider_used, **stats}
            rows.append(row)
            print(
                f"{Path(given).name:14s} {name:20s} p50 {stats['p50']:.4f} ms  "
                f"p90 {stats['p90']:.4f} ms  x{stats['p50'] / base:.2f}  ({stats['runs']:,} runs)",
                flush=True,
            )
        for model in models:
            model.close()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "providers.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
