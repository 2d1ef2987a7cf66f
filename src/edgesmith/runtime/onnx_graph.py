"""Read the input/output quantisation of an ONNX graph without the ``onnx`` package.

An ONNX model whose input tensor is int8/uint8 carries its scale and zero point on the
``DequantizeLinear`` that consumes the input (and the output's on the ``QuantizeLinear`` that
produces it). onnxruntime does not expose the graph, and ``onnx`` is an export-time dependency,
so the few protobuf fields needed are decoded here from the wire format.

The file may be hostile (onnxruntime has already accepted it, but it does not read everything
this reader does), so every malformed piece is one :class:`EdgesmithError` line naming the file
and what is wrong: a truncated varint or field, a name that is not UTF-8, raw data too short for
its element type, a scale that is not a finite number > 0, a zero point that is not an integer.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgesmith.core.errors import EdgesmithError

# onnx.TensorProto.DataType codes for the element types a scale or zero point can have.
_TENSOR_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32}
# Field numbers in onnx.proto.
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER = 1, 5
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE = 1, 2, 4
_TENSOR_DATA_TYPE, _TENSOR_FLOAT_DATA, _TENSOR_INT32_DATA = 2, 4, 5
_TENSOR_NAME, _TENSOR_RAW_DATA = 8, 9


class _Malformed(ValueError):
    """A piece of the protobuf that does not decode; the caller names the file."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while shift < 70:  # a varint has at most 10 bytes
        if pos >= len(buf):
            raise _Malformed("a varint runs past the end of its field (truncated file?)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise _Malformed("a varint is longer than 10 bytes")


def _name(value: object, what: str) -> str:
    try:
        return bytes(value).decode("utf-8")  # type: ignore[arg-type]
    except UnicodeDecodeError:
        raise _Malformed(f"{what} {bytes(value)[:20]!r} is not UTF-8 text") from None


def _fields(buf: memoryview) -> Iterator[tuple[int, int, object]]:
    """Yield ``(field number, wire type, value)``; length-delimited values as memoryviews."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 2, 5):
            if wire == 2:
                length, pos = _varint(buf, pos)
            else:
                length = 8 if wire == 1 else 4
            if pos + length > end:
                raise _Malformed(f"field {number} runs past the end of its message (truncated?)")
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise _Malformed(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _tensor_first_value(buf: memoryview) -> tuple[str, float | int | None]:
    name, dtype, raw, floats, ints = "", None, None, [], []
    for number, wire, value in _fields(buf):
        if number == _TENSOR_NAME:
            name = _name(value, "an initializer name")
        elif number == _TENSOR_DATA_TYPE:
            dtype = _TENSOR_DTYPES.get(value)
        elif number == _TENSOR_RAW_DATA:
            raw = bytes(value)
        elif number == _TENSOR_FLOAT_DATA:
            floats += (
                [struct.unpack("<f", value)[0]]
                if wire == 5
                else list(np.frombuffer(bytes(value), dtype="<f4"))
            )
        elif number == _TENSOR_INT32_DATA:
            if wire == 0:
                ints.append(value)
            else:
                pos, packed = 0, value
                while pos < len(packed):
                    item, pos = _varint(packed, pos)
                    ints.append(item)
    if dtype is None:
        return name, None
    if raw:
        size = np.dtype(dtype).itemsize
        if len(raw) < size:
            raise _Malformed(
                f"initializer {name!r} has {len(raw)} byte(s) of raw data; its "
                f"{np.dtype(dtype).name} elements need {size} each"
            )
        return name, np.frombuffer(raw[:size], dtype=dtype)[0].item()
    if floats:
        return name, float(floats[0])
    if ints:  # int8 values are stored sign-extended in a 64-bit varint
        value = ints[0]
        return name, value - (1 << 64) if value >= 1 << 63 else value
    return name, 0 if dtype is not np.float32 else None


def io_quantization(
    path: str | Path, input_name: str, output_name: str
) -> tuple[tuple[float, int] | None, tuple[float, int] | None]:
    """Scale and zero point of a graph's input and output, where quantised.

    Returns:
        ``((scale, zero_point) | None, (scale, zero_point) | None)`` for input and output:
        the input's from the ``DequantizeLinear`` reading it, the output's from the
        ``QuantizeLinear`` writing it; ``None`` when there is none (a float tensor).

    Raises:
        EdgesmithError: for a graph this reader cannot decode (see the module docstring).
    """
    try:
        return _io_quantization(memoryview(Path(path).read_bytes()), input_name, output_name)
    except (_Malformed, IndexError, struct.error) as exc:
        raise EdgesmithError(f"{path} is a malformed ONNX model: {exc}") from None


def _io_quantization(
    data: memoryview, input_name: str, output_name: str
) -> tuple[tuple[float, int] | None, tuple[float, int] | None]:
    graph = next((v for n, w, v in _fields(data) if n == _MODEL_GRAPH and w == 2), None)
    if graph is None:
        return None, None
    nodes, constants = [], {}
    for number, _, value in _fields(graph):
        if number == _GRAPH_NODE:
            node = {"inputs": [], "outputs": [], "op": ""}
            for field, _, item in _fields(value):
                if field == _NODE_INPUT:
                    node["inputs"].append(_name(item, "a node input name"))
                elif field == _NODE_OUTPUT:
                    node["outputs"].append(_name(item, "a node output name"))
                elif field == _NODE_OP_TYPE:
                    node["op"] = _name(item, "an op type")
            nodes.append(node)
        elif number == _GRAPH_INITIALIZER:
            name, first = _tensor_first_value(value)
            constants[name] = first

    def pair(node: dict) -> tuple[float, int] | None:
        scale = constants.get(node["inputs"][1]) if len(node["inputs"]) > 1 else None
        zero = constants.get(node["inputs"][2], 0) if len(node["inputs"]) > 2 else 0
        if scale is None:
            return None
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise _Malformed(f"a {node['op']} scale must be a finite number > 0, not {scale!r}")
        if not isinstance(zero or 0, int):
            raise _Malformed(f"a {node['op']} zero point must be an integer, not {zero!r}")
        return float(scale), int(zero or 0)

    in_q = next(
        (
            pair(n)
            for n in nodes
            if n["op"] == "DequantizeLinear" and n["inputs"][:1] == [input_name]
        ),
        None,
    )
    out_q = next(
        (
            pair(n)
            for n in nodes
            if n["op"] == "QuantizeLinear" and n["outputs"][:1] == [output_name]
        ),
        None,
    )
    return in_q, out_q
