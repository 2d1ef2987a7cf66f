"""Embedded CIFAR-10: TFLM accuracy and arena, Vela's Ethos-U estimate, for int8 .tflite files.

For each file: accuracy on the CIFAR-10 test split with LiteRT (builtin kernels) and with TFLite
Micro (its reference kernels, one image per invoke), the arena TFLM allocated beside the
estimate edgesmith used to record, the flash (file bytes), and Arm Vela's estimate for
ethos-u55-128 and ethos-u65-256 (ms, cycles, SRAM, NPU/CPU ops). Prints a Markdown table and
writes JSON.

    EDGESMITH_DATA_DIR=DIR .venv/bin/python bench/embedded_cifar10.py \\
        DIR/mlperf/pretrainedResnet_quant.tflite --normalization raw \\
        --json-out runs/embedded.json

The test split is read from ``DIR/cifar10.npz`` unless ``--data`` names the file, DIR being
edgesmith's data folder (``$EDGESMITH_DATA_DIR``, else ``~/.cache/edgesmith/datasets``); with no
files given, MLCommons' ``DIR/mlperf/pretrainedResnet_quant.tflite`` (github.com/mlcommons/tiny)
is measured.

Files without edgesmith metadata (MLCommons' ResNet-8 takes raw 0..255 pixels, quantised
inside with scale 1 and zero point -128) need ``--normalization raw``; edgesmith exports carry
their own preprocessing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from mlperf_files import DATA_FOLDER_EPILOG

MLCOMMONS = Path("mlperf") / "pretrainedResnet_quant.tflite"  # in edgesmith's data folder
ACCELERATORS = ("ethos-u55-128", "ethos-u65-256")


def accuracy(path: Path, provider: str | None, x, y, normalization: str | None) -> dict:
    from edgesmith import runtime

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = runtime.load(path, provider=provider, xnnpack=False)
        if model.metadata == "none" and normalization is not None:  # only files without it
            model.close()
            model = runtime.load(
                path, provider=provider, xnnpack=False, normalization=normalization
            )
    started = time.perf_counter()
    outputs = model.predict(x, batch_size=256)
    seconds = time.perf_counter() - started
    record = {
        "provider": model.provider_used,
        "accuracy": float(np.mean(outputs.argmax(1) == y)),
        "seconds": seconds,
        "ms_per_image": 1000 * seconds / len(x),
        "outputs": outputs,
    }
    if provider == "tflm":
        record["arena"] = dict(model.runner.arena)
    model.close()
    return record


def vela_estimates(path: Path) -> dict:
    from edgesmith.core.profiles import load_profile
    from edgesmith.export.vela import VelaConfig, compile_for_npu

    found = {}
    for name in ACCELERATORS:
        settings = load_profile(name).vela or {}
        with tempfile.TemporaryDirectory() as tmp:
            record = compile_for_npu(
                path, VelaConfig.from_dict({**settings, "accelerator": name}), Path(tmp)
            )
        found[name] = {k: record[k] for k in (
            "inference_ms", "cycles", "sram_kb", "flash_kb", "dram_kb", "npu_ops", "cpu_ops",
            "cpu_fallback", "clock_mhz", "config", "vela_version")}  # fmt: skip
    return found


def former_estimate(path: Path) -> int:
    from edgesmith.export.ops import tflite_op_report
    from edgesmith.export.targets import arena_estimate

    return arena_estimate(tflite_op_report(path.read_bytes()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=DATA_FOLDER_EPILOG,
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, help=f"int8 .tflite files (default: DIR/{MLCOMMONS})"
    )
    parser.add_argument("--data", type=Path, help="cifar10.npz (default: DIR/cifar10.npz)")
    parser.add_argument("--normalization", help="for files without metadata, e.g. raw")
    parser.add_argument("--limit", type=int, help="first N test images (default: all 10,000)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    from edgesmith.core.datasets.download import cache_dir

    how = "pass --data" if args.data else "set EDGESMITH_DATA_DIR or pass --data"
    args.data = args.data or cache_dir() / "cifar10.npz"  # at run time, not import time
    if not args.data.exists():
        print(f"{args.data} is not here; {how}", file=sys.stderr)
        return 2
    how = "pass the .tflite files" if args.paths else "set EDGESMITH_DATA_DIR or pass the files"
    args.paths = args.paths or [cache_dir() / MLCOMMONS]
    for path in args.paths:
        if not path.is_file():
            print(f"{path} is not here; {how}", file=sys.stderr)
            return 2
    data = np.load(args.data)
    x, y = data["x_test"], data["y_test"].ravel().astype(np.int64)
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    results = []
    for path in args.paths:
        litert = accuracy(path, None, x, y, args.normalization)
        tflm = accuracy(path, "tflm", x, y, args.normalization)
        diff = np.abs(litert.pop("outputs") - tflm.pop("outputs"))
        record = {
            "model": str(path),
            "images": len(y),
            "flash_bytes": path.stat().st_size,
            "litert_builtin": litert,
            "tflm": tflm,
            "accuracy_gap_points": 100 * abs(litert["accuracy"] - tflm["accuracy"]),
            "max_abs_output_diff": float(diff.max()),
            "mean_abs_output_diff": float(diff.mean()),
            "arena_measured": tflm["arena"]["total"],
            "arena_former_estimate": former_estimate(path),
            "vela": vela_estimates(path),
        }
        results.append(record)
        print(json.dumps({k: v for k, v in record.items() if k != "vela"}), file=sys.stderr)
    header = (
        "| model | images | LiteRT top-1 % | TFLM top-1 % | TFLM arena B (measured) | former "
        "estimate B | flash KB | "
        + " | ".join(f"{a} ms / cycles / SRAM KB / NPU ops" for a in ACCELERATORS)
        + " |"  # fmt: skip
    )
    print(header)
    print("|" + "---|" * (7 + len(ACCELERATORS)))
    for r in results:
        cells = [
            Path(r["model"]).name,
            f"{r['images']:,}",
            f"{100 * r['litert_builtin']['accuracy']:.2f}",
            f"{100 * r['tflm']['accuracy']:.2f}",
            f"{r['arena_measured']:,}",
            f"{r['arena_former_estimate']:,}",
            f"{r['flash_bytes'] / 1024:.1f}",
        ]
        for a in ACCELERATORS:
            v = r["vela"][a]
            cells.append(
                f"{v['inference_ms']:.3f} / {v['cycles']:,} / {v['sram_kb']:.1f} / "
                f"{v['npu_ops']} of {v['npu_ops'] + v['cpu_ops']}"
            )
        print("| " + " | ".join(cells) + " |")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
