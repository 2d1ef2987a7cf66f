"""The runtime: run, measure and gate exported .tflite/.onnx files without TensorFlow.

``load(path)`` is the embedded inference API; ``benchmark`` measures, ``check`` and
``assert_no_regression`` gate regressions. Importing this package is cheap: the runtimes
(LiteRT, onnxruntime) are imported when a model of their format is loaded.
"""

from __future__ import annotations

from edgesmith.runtime import quiet  # noqa: F401  (silences the runtimes before they load)
from edgesmith.runtime.bench import BenchConfig, BenchRun, benchmark
from edgesmith.runtime.model import Model, load
from edgesmith.runtime.regression import Verdict, assert_no_regression, check
from edgesmith.runtime.runner import MetadataWarning, ProviderFallbackWarning, TensorInfo
from edgesmith.runtime.timing import TimingPlan

__all__ = [
    "BenchConfig",
    "BenchRun",
    "MetadataWarning",
    "Model",
    "ProviderFallbackWarning",
    "TensorInfo",
    "TimingPlan",
    "Verdict",
    "assert_no_regression",
    "benchmark",
    "check",
    "load",
]
