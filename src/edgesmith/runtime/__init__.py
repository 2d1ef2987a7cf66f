"""The runtime: run, measure and gate exported .tflite/.onnx files without TensorFlow.

``load(path)`` is the embedded inference API; ``benchmark`` measures, ``check`` and
``assert_no_regression`` gate regressions. Importing this package is cheap: the runtimes
(LiteRT, onnxruntime) are imported when a model of their format is loaded.
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.runtime import quiet  # noqa: F401  (silences the runtimes before they load)
from edgesmith.runtime.accuracy import evaluate
from edgesmith.runtime.bench import BenchConfig, BenchRun, benchmark, save_baseline
from edgesmith.runtime.bench_schema import BenchDocument, BenchResult
from edgesmith.runtime.bench_schema import parse_document as parse_bench_document
from edgesmith.runtime.embedded_metadata import (
    onnx_with_metadata,
    read_file_metadata,
    tflite_with_metadata,
)
from edgesmith.runtime.emulation import EmulatedSession, check_emulators
from edgesmith.runtime.model import Model, load
from edgesmith.runtime.plots import plots_available
from edgesmith.runtime.regression import Verdict, assert_no_regression, check
from edgesmith.runtime.runner import MetadataWarning, ProviderFallbackWarning, TensorInfo
from edgesmith.runtime.timing import TimingPlan


def tflm_available() -> bool:
    """Whether TFLite Micro (the ``mcu`` extra) is installed here."""
    from edgesmith.runtime.tflm_runner import tflm_available as available

    return available()


def measure_tflm_arena(path: str | Path) -> dict[str, int]:
    """The arena TFLite Micro allocates for a .tflite file: ``{"total", "head", "tail"}``.

    Raises:
        EdgesmithError: when TFLM is missing or cannot run the file (TFLM's reason).
    """
    from edgesmith.runtime.tflm_runner import measure_arena

    return measure_arena(path)


__all__ = [
    "BenchConfig",
    "BenchDocument",
    "BenchResult",
    "BenchRun",
    "EmulatedSession",
    "MetadataWarning",
    "Model",
    "ProviderFallbackWarning",
    "TensorInfo",
    "TimingPlan",
    "Verdict",
    "assert_no_regression",
    "benchmark",
    "check",
    "check_emulators",
    "evaluate",
    "load",
    "measure_tflm_arena",
    "onnx_with_metadata",
    "parse_bench_document",
    "plots_available",
    "read_file_metadata",
    "save_baseline",
    "tflite_with_metadata",
    "tflm_available",
]
