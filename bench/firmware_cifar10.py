"""Int8 CIFAR-10 models compiled with TFLM + CMSIS-NN and run on emulated Cortex-M cores.

Feeds the first N CIFAR-10 test images through each model's firmware on each core in
qemu-system-arm (semihosting) and through LiteRT on the host; prints accuracy, top-1 agreement,
flash, RAM, arena and instructions per inference (retired instructions under -icount, not time),
the library build and emulation seconds, and writes JSON.

    EDGESMITH_DATA_DIR=DIR EDGESMITH_TFLM_SOURCES=TFLM .venv/bin/python \
        bench/firmware_cifar10.py --num 1000 --target cortex-m4,cortex-m7,cortex-m55 \
        --model DIR/mlperf/pretrainedResnet_quant.tflite --model other.tflite \
        --json-out firmware_cifar10.json

The model is MLCommons' ``DIR/mlperf/pretrainedResnet_quant.tflite`` (github.com/mlcommons/tiny)
unless ``--model`` names one or more, the images ``DIR/cifar10.npz`` unless ``--data`` names the
file, DIR being edgesmith's data folder (``$EDGESMITH_DATA_DIR``, else
``~/.cache/edgesmith/datasets``). TFLM is the folder of the pinned TFLite Micro source archives
(``--tflm-sources TFLM`` also works).
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

from edgesmith.core.errors import EdgesmithError
from edgesmith.export.firmware.project import BOARDS
from edgesmith.export.firmware.sources import SOURCES_ENV

MODEL = Path("mlperf") / "pretrainedResnet_quant.tflite"  # in edgesmith's data folder
CIFAR = Path("cifar10.npz")


def main(argv: list[str] | None = None) -> int:
    """Run the bench; exit 2 with one line on bad input."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=DATA_FOLDER_EPILOG,
    )
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        help=f"int8 .tflite, repeat for more (default: DIR/{MODEL})",
    )
    parser.add_argument("--data", type=Path, help=f"cifar10.npz (default: DIR/{CIFAR})")
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument(
        "--target",
        "--targets",
        dest="targets",
        default="cortex-m55",
        metavar="CORE[,CORE]",
        help=f"Cortex-M cores, comma-separated, among {', '.join(BOARDS)}",
    )
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


def _paths(args: argparse.Namespace) -> tuple[list[Path], Path]:
    """The model files and the .npz, checked before anything is built (defaults: DIR/...)."""
    from edgesmith.core.datasets.download import cache_dir

    models = args.model or [cache_dir() / MODEL]  # at run time: $EDGESMITH_DATA_DIR as it is now
    data = args.data or cache_dir() / CIFAR
    for path, name, given in [
        *((m, "model", args.model) for m in models),
        (data, "data", args.data),
    ]:
        if not path.is_file():
            how = f"pass --{name}" if given else f"set EDGESMITH_DATA_DIR or pass --{name}"
            raise EdgesmithError(f"{path} is not here; {how}")
    return models, data


def _targets(text: str) -> list[str]:
    """The comma-separated cores, each a firmware board (one line naming them otherwise)."""
    targets = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in targets if t not in BOARDS]
    if unknown or not targets:
        raise EdgesmithError(
            f"--target {text}: expected cores among {', '.join(BOARDS)}, comma-separated"
        )
    return targets


def _bench_model(model_path: Path, targets: list[str], pixels, labels, tflm_sources) -> list[dict]:
    """Every core's firmware report for one model, with LiteRT's accuracy and the wall time."""
    from edgesmith.export.firmware.pipeline import firmware_report
    from edgesmith.runtime import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load(model_path)
        inputs = model.prepare(pixels)
        litert_accuracy = float(np.mean(model.run(inputs).argmax(axis=1) == labels))
    rows = []
    for target in targets:
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="edgesmith-fw-") as work:
            report = firmware_report(
                model_path, target, inputs, Path(work), labels=labels, tflm_sources=tflm_sources
            )
        row = report.to_dict()
        row.update(
            model=str(model_path),
            total_seconds=time.monotonic() - start,
            litert_accuracy=litert_accuracy,
        )
        rows.append(row)
        print(_line(row), flush=True)
    return rows


HEADER = (
    "model",
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
    "lib build s",
    "emul s",
)


def _line(r: dict) -> str:
    """One table row (instructions are QEMU's retired-instruction count, not time)."""
    build = "cached" if r["library_cached"] else f"{r['library_build_seconds']:.0f}"
    return " | ".join(
        [
            Path(r["model"]).name if Path(r["model"]).name != "model.tflite" else r["model"],
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
            build,
            f"{r['emulation_seconds']:.0f}",
        ]
    )


def _run(args: argparse.Namespace) -> int:
    if args.num <= 0:
        raise EdgesmithError(f"--num {args.num}: expected a positive number of images")
    targets = _targets(args.targets)
    models, data_path = _paths(args)
    data = np.load(data_path)
    pixels, labels = data["x_test"][: args.num], data["y_test"][: args.num].ravel()
    print(" | ".join(HEADER), flush=True)
    rows = [
        row
        for model in models
        for row in _bench_model(model, targets, pixels, labels, args.tflm_sources)
    ]
    if args.json_out:
        args.json_out.write_text(
            json.dumps({"models": [str(m) for m in models], "results": rows}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
