"""Runtime overhead: `edgesmith bench` latency against a bare invoke()/session.run() loop.

For each model file, side by side in one process, 1 thread, alternating A/B several times so
that machine drift hits both alike:

- bare: the runtime used directly (``ai_edge_litert.interpreter.Interpreter`` or
  ``onnxruntime.InferenceSession``), input set once, each ``invoke()`` / ``session.run()``
  timed with ``time.perf_counter_ns``; median over the runs;
- edgesmith: ``edgesmith.runtime.benchmark`` (the code behind ``edgesmith bench``), p50.

The ratio edgesmith/bare per alternation and its median are printed; the issue asks for the
median within 5%. For .tflite files the LiteRT team's own ``benchmark_litert_model`` (its
``CompiledModel`` API, 0.01 ms resolution) is run too, as a third opinion on the median.

    .venv/bin/python bench/runtime_overhead.py MODEL... [--runs 1000] [--seconds 3] [--pairs 5]

Writes bench/out/runtime/overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "runtime"
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def bare_tflite(path: Path, x: np.ndarray):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], x)
    return interpreter.invoke


def bare_onnx(path: Path, x: np.ndarray):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = [session.get_outputs()[0].name]

    def run():
        session.run(outputs, {name: x})

    return run


def bare_median(step, runs: int, seconds: float, warmup: int = 50) -> tuple[float, int]:
    """The plainest loop there is: perf_counter_ns around each call."""
    for _ in range(warmup):
        step()
    clock = time.perf_counter_ns
    samples = []
    start = time.perf_counter()
    while len(samples) < runs or time.perf_counter() - start < seconds:
        t0 = clock()
        step()
        samples.append(clock() - t0)
    return float(np.median(samples)) / 1e6, len(samples)


def litert_tool_median(path: Path, runs: int) -> float | None:
    """Median from ai_edge_litert.tools.benchmark_litert_model (None if it fails)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "r.json"
        cmd = [
            sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model",
            f"--model={path}", "--num_threads=1", f"--num_runs={runs}", "--warmup_runs=50",
            f"--result_json={result}",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not result.is_file():
            return None
        return float(json.loads(result.read_text())["latency"]["median_ms"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="artifact directories or model files")
    parser.add_argument("--runs", type=int, default=1000, help="runs per measurement")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--pairs", type=int, default=5, help="A/B alternations per model")
    args = parser.parse_args()

    import edgesmith.runtime as rt
    from edgesmith.core.datasets import load_dataset

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # one core, as taskset would
    pixels = load_dataset("synthetic?shape=32x32x3&n=64").x_eval[:1]
    plan = rt.TimingPlan(min_runs=args.runs, min_seconds=args.seconds, warmup_runs=50)
    rows = []
    for given in args.models:
        model = rt.load(given, threads=1)
        if tuple(model.input_tensor.shape[1:]) != pixels.shape[1:]:
            pixels_m = np.zeros((1, *model.input_tensor.shape[1:]), np.uint8)
        else:
            pixels_m = pixels
        x = model.prepare(pixels_m)
        bare = bare_tflite(model.path, x) if model.format == "tflite" else bare_onnx(model.path, x)
        ratios, bare_ms, ours_ms = [], [], []
        for _ in range(args.pairs):
            b, _ = bare_median(bare, args.runs, args.seconds)
            run = rt.benchmark([given], config=rt.BenchConfig(threads=1, timing=plan))
            ours = run.results[0].latency.p50
            bare_ms.append(b)
            ours_ms.append(ours)
            ratios.append(ours / b)
        tool = litert_tool_median(model.path, args.runs) if model.format == "tflite" else None
        row = {
            "model": given,
            "format": model.format,
            "bare_p50_ms": float(np.median(bare_ms)),
            "edgesmith_p50_ms": float(np.median(ours_ms)),
            "ratio_median": float(np.median(ratios)),
            "ratios": ratios,
            "litert_tool_median_ms": tool,
        }
        rows.append(row)
        print(
            f"{Path(given).name:14s} bare {row['bare_p50_ms']:.4f} ms  edgesmith "
            f"{row['edgesmith_p50_ms']:.4f} ms  ratio {row['ratio_median']:.3f} "
            f"(per pair {min(ratios):.3f}-{max(ratios):.3f})"
            + (f"  benchmark_litert_model median {tool:.2f} ms" if tool is not None else ""),
            flush=True,
        )
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {"runs": args.runs, "seconds": args.seconds, "pairs": args.pairs, "rows": rows}
    (OUT / "overhead.json").write_text(json.dumps(doc, indent=2) + "\n")
    worst = max(abs(r["ratio_median"] - 1) for r in rows)
    print(f"largest |ratio - 1|: {worst:.3f} ({'within' if worst <= 0.05 else 'OUTSIDE'} 5%)")
    return 0 if worst <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
