"""MLCommons' reference ResNet-8 files, as the bench scripts find them: one flag, one check.

The files (``pretrainedResnet.tflite``, ``pretrainedResnet_quant.tflite``, from
github.com/mlcommons/tiny) live in ``mlperf/`` of edgesmith's data folder (``$EDGESMITH_DATA_DIR``,
else ``~/.cache/edgesmith/datasets``) unless ``--mlperf DIR`` names their folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

QUANT, FLOAT = "pretrainedResnet_quant.tflite", "pretrainedResnet.tflite"
DATA_FOLDER_EPILOG = (
    "DIR: edgesmith's data folder, $EDGESMITH_DATA_DIR, else ~/.cache/edgesmith/datasets"
)
"""What ``DIR`` means in a bench script's defaults (cifar10.npz, mlperf/ live there)."""


def add_mlperf_flag(parser: argparse.ArgumentParser) -> None:
    """``--mlperf DIR``: the folder of MLCommons' two files."""
    parser.add_argument(
        "--mlperf",
        type=Path,
        metavar="DIR",
        help=f"folder of MLCommons' {FLOAT} and {QUANT} (default: mlperf/ in edgesmith's "
        "data folder, $EDGESMITH_DATA_DIR, else ~/.cache/edgesmith/datasets)",
    )


def missing_mlperf(given: Path | None) -> tuple[Path, list[str]]:
    """The folder to read and one line per file that is not there (empty when both are)."""
    from edgesmith.core.datasets.download import cache_dir

    folder = given or cache_dir() / "mlperf"  # at run time: $EDGESMITH_DATA_DIR as it is now
    how = "pass --mlperf DIR" if given else "set EDGESMITH_DATA_DIR or pass --mlperf DIR"
    return folder, [
        f"{folder / n} is not here; {how}" for n in (QUANT, FLOAT) if not (folder / n).is_file()
    ]
