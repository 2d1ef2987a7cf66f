"""MLCommons' int8 ResNet-8 compiled with TFLM + CMSIS-NN and run on emulated Cortex-M cores.

Feeds the first N CIFAR-10 test images through the firmware in qemu-system-arm (semihosting)
and through LiteRT on the host; prints accuracy, top-1 agreement, flash, RAM, arena and
instructions per inference (retired instructions under -icount, not time) and writes JSON.

    EDGESMITH_DATA_DIR=DIR EDGESMITH_TFLM_SOURCES=TFLM .venv/bin/python \
        bench/firmware_cifar10.py --num 200 --json-out firmware_cifar10.json

The model is MLCommons' ``DIR/mlperf/pretrainedResnet_quant.tflite`` (github.com/mlcommons/tiny)
unless ``--model`` names one, the images ``DIR/cifar10.npz`` unless ``--data`` names the file, DIR
being edgesmith's data folder (``$EDGESMITH_DATA_DIR``, else ``~/.cache/edgesmith/datasets``).
TFLM is the folder of the pinned TFLite Micro sources (``--tflm-sources TFLM`` also works).
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

from edgesmith.core.errors import EdgesmithError
from edgesmith.export.firmware.sources import SOURCES_ENV

MODEL = Path("mlperf") / "pretrainedResnet_quant.tflite"  # in edgesmith's data folder
CIFAR = Path("cifar10.npz")


def main(argv: list[str] | None = None) -> int:
    """Run the bench; exit 2 with one line on bad input."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="DIR: edgesmith's data folder, $EDGESMITH_DATA_DIR, else "
        "~/.cache/edgesmith/datasets",
    )
    parser.add_argument("--model", type=Path, help=f"int8 .tflite (default: DIR/{MODEL})")
    parser.add_argument("--data", type=Path, help=f"cifar10.npz (default: DIR/{CIFAR})")
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--targets", default="cortex-m55")
    parser.add_argument(
        "--tflm-sources", default=None, metavar="TFLM", help=f"default: ${SOURCES_ENV}"
    )
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except EdgesmithError as exc:
        print(f"firmware_cifar10: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from edgesmith.core.datasets.download import cache_dir
    from edgesmith.export.firmware.pipeline import firmware_report
    from edgesmith.runtime import load

    if args.num <= 0:
        raise EdgesmithError(f"--num {args.num}: expected a positive number of images")
    for name, default in (("model", MODEL), ("data", CIFAR)):
        given = getattr(args, name)
        path = given or cache_dir() / default  # at run time: $EDGESMITH_DATA_DIR as it is now
        if not path.is_file():
            how = f"pass --{name}" if given else f"set EDGESMITH_DATA_DIR or pass --{name}"
            raise EdgesmithError(f"{path} is not here; {how}")
        setattr(args, name, path)
    data = np.load(args.data)
    pixels, labels = data["x_test"][: args.num], data["y_test"][: args.num].ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load(args.model)
        inputs = model.prepare(pixels)
        litert_accuracy = float(np.mean(model.run(inputs).argmax(axis=1) == labels))
    rows = []
    for target in args.targets.split(","):
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="edgesmith-fw-") as work:
            report = firmware_report(
                args.model,
                target,
                inputs,
                Path(work),
                labels=labels,
                tflm_sources=args.tflm_sources,
            )
        row = report.to_dict()
        row["total_seconds"] = time.monotonic() - start
        row["litert_accuracy"] = litert_accuracy
        rows.append(row)
    header = (
        "target",
        "board",
        "N",
        "acc",
        "LiteRT acc",
        "agree",
        "flash KB",
        "RAM KB",
        "arena used",
        "instr/inference",
        "s/image",
    )
    print(" | ".join(header))
    for r in rows:
        print(
            " | ".join(
                [
                    r["target"],
                    r["machine"],
                    str(r["num_images"]),
                    f"{r['accuracy']:.3f}",
                    f"{r['litert_accuracy']:.3f}",
                    f"{r['agreement_vs_litert']:.3f}",
                    f"{r['flash_kb']:.1f}",
                    f"{r['ram_kb']:.1f}",
                    str(r["arena_used_bytes"]),
                    f"{r['instructions_per_inference']:,}",
                    f"{r['emulation_seconds_per_image']:.2f}",
                ]
            )
        )
    if args.json_out:
        args.json_out.write_text(json.dumps({"model": str(args.model), "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
