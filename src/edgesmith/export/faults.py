"""Deliberately broken copies of an exported file, to prove the parity gate catches them.

A gate that never fails proves nothing: the benchmark of the gates (``bench/gates.py``) and the
parity tests feed it the mistakes a converter or a deployment really makes (a wrong input scale
or zero point, one corrupted weight tensor) and expect a fail. Kept in the product so that a
user can run the same proof on their own files. Needs flatbuffers (TFLite) or onnx (ONNX),
both installed with the export stage.
"""

from __future__ import annotations

import numpy as np

INT8 = 9  # the TFLite schema's TensorType.INT8


def requantized(model, pixels: np.ndarray, scale_factor: float = 1.0, zero_point_shift: int = 0):
    """The int8 input a wrong input scale or zero point would have produced.

    Args:
        model: a loaded runtime model with an integer input (``edgesmith.runtime.load``).
        pixels: raw images, as ``model.prepare`` takes them.
        scale_factor: the wrong scale as a multiple of the right one.
        zero_point_shift: added to the right zero point.
    """
    tensor = model.input_tensor
    q = model.prepare(pixels).astype(np.int32)
    real = (q - tensor.zero_point) * tensor.scale
    wrong = np.rint(real / (tensor.scale * scale_factor)) + tensor.zero_point + zero_point_shift
    info = np.iinfo(tensor.dtype)
    return np.clip(wrong, info.min, info.max).astype(tensor.dtype)


def negated_tflite(data: bytes) -> bytes:
    """A .tflite file with one corrupted weight tensor: its largest int8 constant negated."""
    import flatbuffers

    from edgesmith.export.ops import read_tflite

    model = read_tflite(data)
    tensors = model.subgraphs[0].tensors
    weights = [t for t in tensors if t.type == INT8 and model.buffers[t.buffer].data is not None]
    buffer = model.buffers[max(weights, key=lambda t: len(model.buffers[t.buffer].data)).buffer]
    values = np.asarray(buffer.data, np.uint8).view(np.int8).astype(np.int16)
    buffer.data = np.clip(-values, -127, 127).astype(np.int8).view(np.uint8)
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def negated_onnx(data: bytes) -> bytes:
    """A QDQ .onnx file with one corrupted weight tensor: its largest int8 initializer negated."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(data)
    inits = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    target = max(inits, key=lambda i: int(np.prod(i.dims)))
    values = numpy_helper.to_array(target).astype(np.int16)
    target.CopyFrom(
        numpy_helper.from_array(np.clip(-values, -127, 127).astype(np.int8), target.name)
    )
    return model.SerializeToString()
