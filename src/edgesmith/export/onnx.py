"""Keras model or .tflite file -> ONNX ``ModelProto`` with tf2onnx.

``from_keras`` gets an explicit ``input_signature`` (batch dimension left open): without one,
tf2onnx 1.17 fails on TensorFlow >= 2.16 Keras models (tf2onnx #2329, #2348). The input is
named ``input`` so the files of every format look alike to the runtime.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgesmith.core.errors import EdgesmithError
from edgesmith.export.quiet import quiet_conversion
from edgesmith.tfkeras.backend import keras, tf

INPUT_NAME = "input"


def _tf2onnx():
    with quiet_conversion():
        import tf2onnx
    return tf2onnx


def from_keras(model: keras.Model, opset: int):
    """Convert a tf_keras model to ONNX (float32, NHWC input, open batch dimension).

    Raises:
        EdgesmithError: when tf2onnx cannot convert the model (its first line is given).
    """
    tf2onnx = _tf2onnx()
    shape = (None, *tuple(model.inputs[0].shape[1:]))
    signature = (tf.TensorSpec(shape, tf.float32, name=INPUT_NAME),)
    try:
        with quiet_conversion():
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    except Exception as exc:  # tf2onnx raises ValueError, KeyError, RuntimeError...
        raise EdgesmithError(f"tf2onnx could not convert the model: {_first_line(exc)}") from None
    return proto


def from_tflite(model_bytes: bytes, opset: int):
    """Convert a .tflite file's bytes to ONNX (a quantised .tflite gives a QDQ graph).

    Raises:
        EdgesmithError: when tf2onnx cannot convert the file.
    """
    tf2onnx = _tf2onnx()
    with tempfile.TemporaryDirectory(prefix="edgesmith-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model_bytes)
        try:
            with quiet_conversion():
                proto, _ = tf2onnx.convert.from_tflite(str(path), opset=opset)
        except Exception as exc:  # tf2onnx raises many exception types
            raise EdgesmithError(
                f"tf2onnx could not convert the .tflite file: {_first_line(exc)}"
            ) from None
    return proto


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
