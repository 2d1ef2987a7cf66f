"""The export stage: Keras artifacts to TFLite and ONNX files, each checked against its source.

``export(source_dir, formats, out, **options)`` writes one artifact directory per format.
Importing this package loads no TensorFlow (the CLI lists formats in milliseconds); the
converters load it on first use.
"""

from __future__ import annotations

from edgesmith.core.lazy import lazy_getattr
from edgesmith.export.calibration import calibration_inputs, calibration_pixels
from edgesmith.export.formats import FORMATS, LITERT_FORMATS, QAT_FORMATS
from edgesmith.export.options import ExportOptions

_LAZY = {
    "export": "edgesmith.export.exporter",
    "export_formats": "edgesmith.export.exporter",
    "FormatResult": "edgesmith.export.exporter",
    "int8_converter": "edgesmith.export.tflite",
    "convert_tflite": "edgesmith.export.tflite",
    "read_source": "edgesmith.export.source",
    "mixed_recipe": "edgesmith.export.litert_recipes",
}
__all__ = [
    "FORMATS",
    "LITERT_FORMATS",
    "QAT_FORMATS",
    "ExportOptions",
    "calibration_inputs",
    "calibration_pixels",
    *_LAZY,
]


__getattr__ = lazy_getattr("edgesmith.export", _LAZY)
