"""Metadata embedded in exported model files, so a device holding only the file preprocesses right.

The same JSON document as the manifest's ``labels``, ``input`` and ``output`` records goes into
the file under the name ``edgesmith``: a TFLite ``Model.metadata`` entry pointing at a buffer,
or an ONNX ``metadata_props`` entry. TFLite files are read and rewritten with the flatbuffer
schema that ai-edge-litert ships, so neither reading nor writing needs TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgesmith.core.errors import EdgesmithError

KEY = "edgesmith"
METADATA_VERSION = 1


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        raise EdgesmithError(
            "TFLite metadata needs ai-edge-litert: pip install 'edgesmith[runtime]'"
        ) from None
    return schema


def tflite_with_metadata(model_bytes: bytes, document: dict[str, Any]) -> bytes:
    """Return the .tflite bytes with ``document`` embedded (replacing an earlier one)."""
    import flatbuffers
    import numpy as np

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    buffer = schema.BufferT()
    payload = json.dumps({"metadata_version": METADATA_VERSION, **document}).encode()
    buffer.data = np.frombuffer(payload, dtype=np.uint8)
    model.buffers = list(model.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name = KEY
    entry.buffer = len(model.buffers) - 1
    kept = [m for m in (model.metadata or []) if _text(m.name) != KEY]
    model.metadata = kept + [entry]
    builder = flatbuffers.Builder(len(model_bytes) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_tflite_metadata(model_bytes: bytes) -> dict[str, Any] | None:
    """The embedded document of a .tflite file, or None when it has none."""
    schema = _schema()
    try:
        model = schema.Model.GetRootAs(bytearray(model_bytes), 0)
        for index in range(model.MetadataLength()):
            entry = model.Metadata(index)
            if _text(entry.Name()) == KEY:
                data = model.Buffers(entry.Buffer()).DataAsNumpy()
                return json.loads(bytes(data).decode())
    except Exception as exc:  # flatbuffers raises struct/index errors on corrupt input
        raise EdgesmithError(f"not a readable .tflite flatbuffer ({type(exc).__name__})") from None
    return None


def onnx_with_metadata(model, document: dict[str, Any]) -> None:
    """Embed ``document`` into an in-memory ``onnx.ModelProto`` (replacing an earlier one)."""
    kept = [p for p in model.metadata_props if p.key != KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = KEY
    entry.value = json.dumps({"metadata_version": METADATA_VERSION, **document})


def read_onnx_metadata(custom_metadata: dict[str, str]) -> dict[str, Any] | None:
    """The embedded document from an ONNX custom metadata map (``onnx`` or onnxruntime's)."""
    text = custom_metadata.get(KEY)
    return None if text is None else json.loads(text)


def read_file_metadata(path: str | Path) -> dict[str, Any] | None:
    """The embedded document of a .tflite or .onnx file, read without TensorFlow.

    Raises:
        EdgesmithError: for a missing file or an unknown suffix.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgesmithError(f"model file not found: {path}")
    if path.suffix == ".tflite":
        return read_tflite_metadata(path.read_bytes())
    if path.suffix == ".onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        return read_onnx_metadata(session.get_modelmeta().custom_metadata_map)
    raise EdgesmithError(f"{path}: expected a .tflite or .onnx file")
