"""The runtime: run, measure and gate exported .tflite/.onnx files without TensorFlow.

``load(path)`` is the embedded inference API; ``benchmark``, ``check`` and
``assert_no_regression`` measure and gate. Importing this package is cheap: the runtimes
(LiteRT, onnxruntime) are imported when a model of their format is loaded.
"""

from __future__ import annotations

from edgesmith.runtime import quiet  # noqa: F401  (silences the runtimes before they load)
from edgesmith.runtime.model import Model, load
from edgesmith.runtime.runner import MetadataWarning, ProviderFallbackWarning, TensorInfo

__all__ = ["MetadataWarning", "Model", "ProviderFallbackWarning", "TensorInfo", "load"]
