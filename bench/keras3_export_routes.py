"""Keras 3's own LiteRT export against the tf_keras rebuild: are the files' outputs the same?

Exports a Keras 3 train artifact twice with ``edgesmith export`` (tflite-fp32 and tflite-int8):
once through Keras 3's ``model.export(format="litert")`` (the default) and once with
``--no-keras3-export`` (the weights rebuilt in tf_keras, then the TFLite converter), runs both
files of each format on every eval image with edgesmith's runtime, and prints how many outputs
are bit-identical, the largest difference, the sizes and the accuracies.

    EDGESMITH_DATA_DIR=DIR .venv/bin/python bench/keras3_export_routes.py ARTIFACT \\
        [--data cifar10] [--out bench/out/keras3_routes]

Writes OUT/routes.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("tflite-fp32", "tflite-int8")


def outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """The file's outputs on ``x`` (raw pixels; the embedded normalisation applies), 1 thread."""
    from edgesmith.runtime import load

    model = load(path, threads=1)
    try:
        return model.predict(x, batch_size=250)
    finally:
        model.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", help="a Keras 3 train artifact")
    parser.add_argument("--data", default="cifar10", help="data spec (its eval split is compared)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "keras3_routes"))
    args = parser.parse_args()
    from edgesmith.core.datasets import load_dataset
    from edgesmith.core.errors import EdgesmithError
    from edgesmith.runtime import machine

    try:
        data = load_dataset(args.data)
    except EdgesmithError as exc:
        print(f"keras3_export_routes: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    routes = {"keras3-export": [], "keras3-rebuilt": ["--no-keras3-export"]}
    for route, flags in routes.items():
        folder = out / route
        if folder.exists():  # this bench's own output of an earlier run
            shutil.rmtree(folder)
        command = [
            sys.executable,
            "-m",
            "edgesmith",
            "export",
            "--from",
            args.artifact,
            "--format",
            ",".join(FORMATS),
            "--data",
            args.data,
            "--out",
            str(folder),
            "--quiet",
            *flags,
        ]
        if subprocess.run(command).returncode != 0:
            print(f"keras3_export_routes: the {route} export failed (above)", file=sys.stderr)
            return 2
    result: dict = {"artifact": args.artifact, "host": machine.cpu_name(), "formats": {}}
    for fmt in FORMATS:
        files = {route: out / route / fmt / "model.tflite" for route in routes}
        got = {route: outputs(path, data.x_eval) for route, path in files.items()}
        a, b = got["keras3-export"], got["keras3-rebuilt"]
        manifests = {r: json.loads((out / r / fmt / "manifest.json").read_text()) for r in routes}
        result["formats"][fmt] = {
            "images": len(a),
            "bit_identical_images": int((a == b).all(axis=1).sum()),
            "max_abs_diff": float(np.abs(a - b).max()),
            "size_bytes": {r: files[r].stat().st_size for r in routes},
            "accuracy": {r: float((got[r].argmax(1) == data.y_eval).mean()) for r in routes},
            "converted_from": {r: manifests[r]["config"].get("converted_from") for r in routes},
        }
        row = result["formats"][fmt]
        if row["converted_from"] != {route: route for route in routes}:  # else nothing compared
            print(
                f"keras3_export_routes: {args.artifact} did not take both routes "
                f"({row['converted_from']}): is it a Keras 3 artifact?",
                file=sys.stderr,
            )
            return 2
        print(
            f"{fmt}: {row['bit_identical_images']:,}/{row['images']:,} images bit-identical, "
            f"max |diff| {row['max_abs_diff']:.3g}; sizes {row['size_bytes']}; "
            f"accuracy {row['accuracy']}; routes {row['converted_from']}"
        )
    (out / "routes.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out / 'routes.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
