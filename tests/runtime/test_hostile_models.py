"""Hostile .tflite/.onnx files: each is one EdgesmithError line (exit 2), never exit 3 (issue 23).

Each file is made here from the committed fixtures, mutated the way someone handing out a model
could: the embedded metadata (NaN, zero or infinite std, a negative scale, wrong types, absurd
shapes and label lists, not JSON at all), a custom op or an out-of-range tensor index in the
flatbuffer, and ONNX initializers whose names are not UTF-8 or whose raw data is short (read by
the project's own protobuf reader, ``runtime/onnx_graph.py``).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime import load, read_file_metadata
from edgesmith.runtime.embedded_metadata import (
    KEY,
    read_tflite_metadata,
    tflite_with_metadata,
    validate_document,
)

FIXTURES = Path(__file__).parent / "fixtures"
# bench/hostile.py runs these cases (and more) against the installed CLI; its flatbuffer
# builders and mutations are shared here rather than copied.
_SPEC = importlib.util.spec_from_file_location(
    "edgesmith_bench_hostile", Path(__file__).resolve().parents[2] / "bench" / "hostile.py"
)
hostile = sys.modules[_SPEC.name] = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(hostile)


def good_document() -> dict:
    document = read_tflite_metadata((FIXTURES / "int8.tflite").read_bytes())
    assert document is not None and document["input"]["normalization"]
    return document


def with_input(**changes) -> dict:
    document = good_document()
    document["input"] = {**document["input"], **changes}
    return document


def with_normalization(**changes) -> dict:
    document = good_document()
    document["input"]["normalization"] = {**document["input"]["normalization"], **changes}
    return document


# (case id, document, text the one-line message must hold)
BAD_DOCUMENTS = [
    ("nan-std", with_normalization(std=[float("nan")]), "input.normalization.std"),
    ("zero-std", with_normalization(std=[0.0]), "finite numbers > 0"),
    ("inf-std", with_normalization(std=[float("inf")]), "input.normalization.std"),
    ("nan-mean", with_normalization(mean=[float("nan")]), "input.normalization.mean"),
    ("negative-scale", with_normalization(scale=-1.0), "input.normalization.scale"),
    ("string-scale", with_normalization(scale="1/255"), "a finite number > 0"),
    ("many-stds", with_normalization(std=[1.0] * 5000), "a list of 1 to 1024"),
    ("normalization-list", with_input(normalization=[1, 2]), "input.normalization"),
    ("quantization-string", with_input(quantization="int8"), "input.quantization"),
    (
        "quantization-nan-scale",
        with_input(quantization={"scale": float("nan"), "zero_point": 0}),
        "input.quantization.scale",
    ),
    (
        "quantization-huge-zero",
        with_input(quantization={"scale": 0.1, "zero_point": 1 << 40}),
        "int32 range",
    ),
    ("absurd-shape", with_input(shape=[10**9, 10**9, 3]), "input.shape"),
    ("shape-strings", with_input(shape=["8", "8", "1"]), "input.shape"),
    ("labels-object", {**good_document(), "labels": {"a": 1}}, "labels must be a list"),
    ("labels-huge", {**good_document(), "labels": ["x"] * 100_001}, "at most 100000"),
    ("label-not-string", {**good_document(), "labels": [1] * 10}, "labels must be strings"),
    ("output-kind", {**good_document(), "output": {"kind": "exec"}}, "output.kind"),
    ("macs-negative", {**good_document(), "macs": -5}, "macs must be a non-negative integer"),
    ("unknown-key", {**good_document(), "run": "rm -rf /"}, "unknown key 'run'"),
    ("document-list", [1, 2, 3], "must be a JSON object"),
    ("future-version", {**good_document(), "metadata_version": 99}, "metadata_version"),
]


def one_line(error: EdgesmithError) -> str:
    text = str(error)
    assert "\n" not in text and len(text) < 400, text
    return text


@pytest.mark.parametrize(
    "document,expected", [c[1:] for c in BAD_DOCUMENTS], ids=[c[0] for c in BAD_DOCUMENTS]
)
def test_bad_embedded_metadata_is_one_line_naming_the_field(tmp_path, document, expected):
    path = tmp_path / "evil.tflite"
    built = tflite_with_metadata((FIXTURES / "int8.tflite").read_bytes(), {})
    path.write_bytes(_replace_payload(built, json.dumps(document, allow_nan=True).encode()))
    with pytest.raises(EdgesmithError) as caught:
        load(path)
    message = one_line(caught.value)
    assert expected in message and "evil.tflite" in message


def _replace_payload(model_bytes: bytes, payload: bytes) -> bytes:
    """The .tflite with its edgesmith metadata buffer holding ``payload`` exactly."""

    def mutate(model, schema):
        (entry,) = [m for m in model.metadata if m.name.decode() == KEY]
        model.buffers[entry.buffer].data = np.frombuffer(payload, dtype=np.uint8)

    return hostile._repack_tflite(model_bytes, mutate)


@pytest.mark.parametrize(
    "payload,expected",
    [
        (b"\xff\xfe not utf-8", "not valid UTF-8 JSON"),
        (b'{"labels": [', "not valid UTF-8 JSON"),
        (b"[" * 100_000, "not valid UTF-8 JSON"),
        (b" " * (1 << 20) + b"{}", "expected at most 1048576"),
    ],
    ids=["not-utf8", "truncated-json", "deep-nesting", "over-1-mib"],
)
def test_undecodable_metadata_is_one_line(tmp_path, payload, expected):
    path = tmp_path / "evil.tflite"
    built = tflite_with_metadata((FIXTURES / "int8.tflite").read_bytes(), {})
    path.write_bytes(_replace_payload(built, payload))
    with pytest.raises(EdgesmithError) as caught:
        read_file_metadata(path)
    assert expected in one_line(caught.value)


def test_the_exported_document_still_validates_unchanged():
    document = good_document()
    assert validate_document(document) == document
    assert load(FIXTURES / "int8.tflite").metadata == "embedded"


def _mutated_tflite(tmp_path: Path, mutate) -> Path:
    path = tmp_path / "evil.tflite"
    path.write_bytes(hostile._repack_tflite((FIXTURES / "float.tflite").read_bytes(), mutate))
    return path


@pytest.mark.parametrize(
    "mutate", [hostile._custom_op, hostile._tensor_index, hostile._buffer_index],
    ids=["custom-op", "tensor-index", "buffer-index"],
)  # fmt: skip
def test_a_tflite_litert_cannot_prepare_exits_2_with_one_line(tmp_path, mutate):
    """LiteRT's RuntimeError/ValueError at Interpreter()/allocate_tensors() used to be exit 3."""
    path = _mutated_tflite(tmp_path, mutate)
    run = subprocess.run(
        [sys.executable, "-m", "edgesmith", "bench", str(path), "--data", "digits"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert len(lines) == 1 and "evil.tflite" in lines[0], run.stderr


def _onnx_with_int8_input(tmp_path: Path, *, name: bytes, raw: bytes) -> Path:
    """An int8-input ONNX graph whose scale initializer is written with ``name`` and ``raw``."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    placeholder = "S" * len(name)
    scale = helper.make_tensor(placeholder, TensorProto.FLOAT, [], [0.5])
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["x", placeholder], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [scale],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    data = model.SerializeToString()
    if raw is not None:  # float_data [0.5] -> raw_data of the given bytes
        scale.ClearField("float_data")
        scale.raw_data = raw
        model.graph.initializer[0].CopyFrom(scale)
        data = model.SerializeToString()
    data = data.replace(placeholder.encode(), name)
    path = tmp_path / "evil.onnx"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "name,raw,expected",
    [
        (b"\xff\xfe\xfd", None, "is not UTF-8 text"),
        (b"scale", b"\x01", "1 byte(s) of raw data"),
    ],
    ids=["non-utf8-name", "short-raw-data"],
)
def test_onnx_graph_reader_refuses_malformed_initializers(tmp_path, name, raw, expected):
    from edgesmith.runtime.onnx_graph import io_quantization

    path = _onnx_with_int8_input(tmp_path, name=name, raw=raw)
    with pytest.raises(EdgesmithError) as caught:
        io_quantization(path, "x", "y")
    message = one_line(caught.value)
    assert expected in message and "evil.onnx is a malformed ONNX model" in message


def test_onnx_runtime_s_own_long_error_is_clipped_to_one_short_line(tmp_path):
    """ONNX Runtime's message for 1 byte of float data ran to 450 characters in the error line."""
    from edgesmith import runtime

    path = _onnx_with_int8_input(tmp_path, name=b"scale", raw=b"\x01")
    with pytest.raises(EdgesmithError) as caught:
        runtime.load(path)
    message = one_line(caught.value)
    assert "is not a readable ONNX model" in message
    assert len(message) <= len(str(path)) + 200, message


def test_onnx_graph_reader_refuses_a_truncated_varint(tmp_path):
    from edgesmith.runtime.onnx_graph import io_quantization

    path = tmp_path / "cut.onnx"
    path.write_bytes(b"\x3a\x80")  # graph field, its length varint cut short
    with pytest.raises(EdgesmithError, match="cut.onnx is a malformed ONNX model: a varint"):
        io_quantization(path, "x", "y")
