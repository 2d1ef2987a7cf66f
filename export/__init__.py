"""The export stage: Keras artifacts to TFLite and ONNX files, each checked against its source.

``export(source_dir, formats, out, **options)`` writes one artifact directory per format.
Importing this package loads no TensorFlow (the CLI lists formats in milliseconds); the
converters load it on first use.
"""

from __future__ import annotations

import importlib

from edgesmith.export.formats import FORMATS
from edgesmith.export.options import ExportOptions

_LAZY = {
    "export": "edgesmith.export.exporter",
    "export_formats": "edgesmith.export.exporter",
    "FormatResult": "edgesmith.export.exporter",
}
__all__ = ["FORMATS", "ExportOptions", "FormatResult", "export", "export_formats"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgesmith.export' has no attribute {name!r}")
