"""Export benchmark: every format of a CIFAR-10 ResNet-8, measured on the 10,000 test images.

For each format: file size (raw and gzip), accuracy of the exported file run by its own runtime,
top-1 agreement with the Keras model, max abs diff of the outputs, parity verdict. Also the
raw-pixel int8 file (int8 = pixel - 128, as MLCommons' reference ResNet-8 takes it), and the
issue's targets: int8 .tflite <= 100 KB with accuracy within 1 point of float.

    EDGESMITH_DATA_DIR=DIR .venv/bin/python bench/export_cifar10.py \\
        --from bench/out/train_cifar10/resnet8

DIR is edgesmith's data folder holding cifar10.npz (``$EDGESMITH_DATA_DIR``, else
``~/.cache/edgesmith/datasets``; edgesmith downloads the file there once if it is missing).

Writes bench/out/export_cifar10/results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "out" / "export_cifar10"
INT8_LIMIT_BYTES = 100 * 1024
MLPERF_INT8_BYTES = 98_496


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="trained Keras artifact")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (replaced)")
    parser.add_argument("--formats", default="all", help="formats (default: all)")
    parser.add_argument("--calibration-samples", type=int, default=500)
    parser.add_argument("--no-raw", action="store_true", help="skip the raw-input int8 run")
    args = parser.parse_args()

    from edgesmith.core.artifacts import read_artifact
    from edgesmith.export import export_formats

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    runs = [("", {"raw_input": False})]
    if not args.no_raw:
        runs.append(("raw-input", {"raw_input": True}))
    rows = []
    started = time.perf_counter()
    for label, options in runs:
        formats = args.formats if not options["raw_input"] else "tflite-int8,tflite-fp32"
        results = export_formats(
            args.source,
            formats,
            out / (label or "standard"),
            allow_mismatch=True,
            calibration_samples=args.calibration_samples,
            report=lambda line: print(line, file=sys.stderr, flush=True),
            **options,
        )
        for result in results:
            m = result.metrics
            rows.append(
                {
                    "format": result.name + (f" ({label})" if label else ""),
                    "size_bytes": m.size_bytes,
                    "gzip_bytes": m.gzip_bytes,
                    "accuracy": m.accuracy,
                    "agreement": m.agreement,
                    "max_abs_diff": m.max_abs_diff,
                    "mean_abs_diff": m.mean_abs_diff,
                    "parity": m.parity,
                    "num_eval": m.num_eval,
                    "seconds": result.seconds,
                    "input": result.artifact.input_spec.to_dict() if result.artifact else None,
                }
            )
    total = time.perf_counter() - started
    source = read_artifact(args.source, verify=False)
    checks = _targets(rows, source.metrics.accuracy)
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "source": {
            "path": args.source,
            "id": source.id,
            "accuracy": source.metrics.accuracy,
        },
        "machine": {
            "cpu": _cpu(),
            "cores": os.cpu_count(),
            "os": platform.platform(),
            "python": platform.python_version(),
        },
        "total_seconds": round(total, 1),
        "rows": rows,
        "targets": checks,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(rows, source.metrics.accuracy))
    print()
    for check in checks:
        print(f"- {check['what']}: {check['value']} -> {'PASS' if check['pass'] else 'FAIL'}")
    print(f"\nresults: {out / 'results.json'} ({total:.0f} s)")
    return 0 if all(c["pass"] for c in checks) and all(r["parity"] == "pass" for r in rows) else 1


def _targets(rows: list[dict], keras_accuracy: float) -> list[dict]:
    by_name = {r["format"]: r for r in rows}
    int8 = by_name.get("tflite-int8")
    float32 = by_name.get("tflite-fp32")
    checks = []
    if int8:
        checks.append(
            {
                "what": "tflite-int8 size <= 100 KB (MLPerf Tiny reference 98,496 B)",
                "value": f"{int8['size_bytes']:,} B",
                "pass": int8["size_bytes"] <= INT8_LIMIT_BYTES,
            }
        )
    if int8 and float32:
        drop = (float32["accuracy"] - int8["accuracy"]) * 100
        checks.append(
            {
                "what": "tflite-int8 accuracy within 1 point of float (PTQ)",
                "value": f"{int8['accuracy']:.4f} vs {float32['accuracy']:.4f} "
                f"({drop:+.2f} points drop; Keras {keras_accuracy:.4f})",
                "pass": drop <= 1.0,
            }
        )
    return checks


def markdown(rows: list[dict], keras_accuracy: float) -> str:
    lines = [
        f"Keras source accuracy: {keras_accuracy:.4f}",
        "",
        "| format | size B | gzip B | accuracy | agreement | max abs diff | parity | seconds |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['format']} | {r['size_bytes']:,} | {r['gzip_bytes']:,} | {r['accuracy']:.4f} "
            f"| {r['agreement']:.4f} | {r['max_abs_diff']:.2g} | {r['parity']} | {r['seconds']} |"
        )
    return "\n".join(lines)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
