"""edgesmith: train a CNN, compress it, export it to TFLite/ONNX and measure it on the device.

Importing this package is cheap and never imports TensorFlow: the stages load their heavy
dependencies when they are used.
"""

from __future__ import annotations

from edgesmith.core.errors import CheckFailed, EdgesmithError

__version__ = "0.1.0"
__all__ = ["CheckFailed", "EdgesmithError", "__version__"]
