"""``python -m edgesmith.export.firmware MODEL.tflite --target CORE``: build, run, report.

CORE is a Cortex-M core of ``project.BOARDS`` (cortex-m4, cortex-m7, cortex-m55).

For a .tflite file that is not an edgesmith artifact (MLCommons' reference ResNet-8, say), or
to run more images than an export would: prints the firmware report as JSON (exit 2 with one
line on bad input). ``edgesmith export --target cortex-m55`` runs the same pipeline on an
artifact's eval images after parity and records it in the manifest (``target.firmware``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from edgesmith.core.errors import EdgesmithError

from .project import BOARDS


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run the firmware on N images (an .npz's x_test/y_test, or random)."""
    parser = argparse.ArgumentParser(prog="python -m edgesmith.export.firmware")
    parser.add_argument("model", type=Path)
    parser.add_argument("--target", default="cortex-m55", choices=list(BOARDS))
    parser.add_argument("--data", type=Path, default=None, help=".npz with x_test, y_test")
    parser.add_argument("--num", type=int, default=20)
    parser.add_argument("--tflm-sources", default=None)
    parser.add_argument("--work", type=Path, default=None, help="keep the build folder here")
    args = parser.parse_args(argv)
    try:
        from .pipeline import firmware_report

        if not args.model.is_file():
            raise EdgesmithError(f"{args.model}: no such file; expected an int8 .tflite")
        if args.num <= 0:
            raise EdgesmithError(f"--num {args.num}: expected a positive number of images")
        labels = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from edgesmith.runtime import load

            model = load(args.model)
            shape = tuple(model.input_tensor.shape[1:])
            if args.data is not None:
                data = np.load(args.data)
                inputs = model.prepare(data["x_test"][: args.num])
                labels = data["y_test"][: args.num].ravel()
            else:
                rng = np.random.default_rng(0)
                inputs = rng.integers(-128, 128, size=(args.num, *shape), dtype=np.int8)
        with tempfile.TemporaryDirectory(prefix="edgesmith-fw-") as tmp:
            work = args.work or Path(tmp)
            report = firmware_report(
                args.model, args.target, inputs, work, labels=labels, tflm_sources=args.tflm_sources
            )
    except EdgesmithError as exc:
        print(f"edgesmith: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
