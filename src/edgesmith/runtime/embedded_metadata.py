"""Metadata embedded in exported model files, so a device holding only the file preprocesses right.

The same JSON document as the manifest's ``labels``, ``input`` and ``output`` records goes into
the file under the name ``edgesmith``: a TFLite ``Model.metadata`` entry pointing at a buffer,
or an ONNX ``metadata_props`` entry. TFLite files are read and rewritten with the flatbuffer
schema that ai-edge-litert ships, so neither reading nor writing needs TensorFlow.

A model file may come from anyone, so the embedded document is read like a manifest: at most
1 MiB of JSON, an object with only the keys edgesmith writes, each validated by the manifest's
own records (:class:`~edgesmith.core.manifest.InputRecord`, ``OutputRecord``): finite
normalisation numbers with std and scale > 0, a quantisation scale > 0, a bounded shape, at most
100,000 string labels. Anything else is one :class:`EdgesmithError` line naming the field and
what was expected (exit 2), never a silent NaN and never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import (
    MAX_LABEL_CHARS,
    MAX_LABELS,
    InputRecord,
    OutputRecord,
)

KEY = "edgesmith"
METADATA_VERSION = 1
MAX_METADATA_BYTES = 1 << 20
WHERE = "embedded edgesmith metadata"
_KEYS = ("metadata_version", "labels", "input", "output", "macs")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_document(document: Any, *, where: str = WHERE) -> dict[str, Any]:
    """Check an embedded metadata document as strictly as a manifest; return it normalised.

    Args:
        document: the decoded JSON.
        where: what to name in messages.

    Returns:
        The document with ``input``/``output`` rewritten from their typed records.

    Raises:
        EdgesmithError: one line naming the field and the value expected.
    """
    if not isinstance(document, dict):
        raise EdgesmithError(f"{where} must be a JSON object. Received: {_short(document)}")
    unknown = [k for k in document if k not in _KEYS]
    if unknown:
        raise EdgesmithError(
            f"{where}: unknown key {_short(unknown[0])}; expected only {', '.join(_KEYS)}"
        )
    version = document.get("metadata_version", METADATA_VERSION)
    if not _is_int(version) or not 1 <= version <= METADATA_VERSION:
        raise EdgesmithError(
            f"{where}: metadata_version must be an integer from 1 to {METADATA_VERSION} "
            f"(a newer edgesmith wrote it, or it was edited). Received: {_short(version)}"
        )
    out: dict[str, Any] = {"metadata_version": version}
    labels = document.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or len(labels) > MAX_LABELS:
            raise EdgesmithError(
                f"{where}: labels must be a list of at most {MAX_LABELS} class names. "
                f"Received: {_short(labels)}"
            )
        for label in labels:
            if not isinstance(label, str) or len(label) > MAX_LABEL_CHARS:
                raise EdgesmithError(
                    f"{where}: labels must be strings of at most {MAX_LABEL_CHARS} characters. "
                    f"Received: {_short(label)}"
                )
        out["labels"] = list(labels)
    if document.get("input") is not None:
        out["input"] = InputRecord.from_dict(document["input"], where=where).to_dict()
    if document.get("output") is not None:
        out["output"] = OutputRecord.from_dict(document["output"], where=where).to_dict()
    macs = document.get("macs")
    if macs is not None:
        if not _is_int(macs) or macs < 0:
            raise EdgesmithError(
                f"{where}: macs must be a non-negative integer. Received: {_short(macs)}"
            )
        out["macs"] = macs
    return out


def _decode(payload: bytes | str, where: str) -> dict[str, Any]:
    """Parse at most :data:`MAX_METADATA_BYTES` of JSON and validate it."""
    size = len(payload.encode() if isinstance(payload, str) else payload)
    if size > MAX_METADATA_BYTES:
        raise EdgesmithError(
            f"{where} is {size} bytes; expected at most {MAX_METADATA_BYTES} (1 MiB)"
        )
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        document = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise EdgesmithError(f"{where} is not valid UTF-8 JSON ({detail})") from None
    return validate_document(document, where=where)


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


def read_tflite_metadata(model_bytes: bytes, *, where: str = WHERE) -> dict[str, Any] | None:
    """The embedded document of a .tflite file (validated), or None when it has none.

    Raises:
        EdgesmithError: for a corrupt flatbuffer, or a document that is too large, not JSON, or
            fails :func:`validate_document`.
    """
    schema = _schema()
    payload = None
    try:
        model = schema.Model.GetRootAs(bytearray(model_bytes), 0)
        for index in range(model.MetadataLength()):
            entry = model.Metadata(index)
            if _text(entry.Name()) == KEY:
                buffer = model.Buffers(entry.Buffer())
                if buffer is None:
                    raise IndexError("metadata buffer index out of range")
                length = buffer.DataLength()
                if length > MAX_METADATA_BYTES:
                    raise EdgesmithError(
                        f"{where} is {length} bytes; expected at most {MAX_METADATA_BYTES} (1 MiB)"
                    )
                payload = bytes(buffer.DataAsNumpy()) if length else b""
                break
    except EdgesmithError:
        raise
    except Exception as exc:  # flatbuffers raises struct/index errors on corrupt input
        raise EdgesmithError(f"not a readable .tflite flatbuffer ({type(exc).__name__})") from None
    return None if payload is None else _decode(payload, where)


def onnx_with_metadata(model, document: dict[str, Any]) -> None:
    """Embed ``document`` into an in-memory ``onnx.ModelProto`` (replacing an earlier one)."""
    kept = [p for p in model.metadata_props if p.key != KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = KEY
    entry.value = json.dumps({"metadata_version": METADATA_VERSION, **document})


def read_onnx_metadata(
    custom_metadata: dict[str, str], *, where: str = WHERE
) -> dict[str, Any] | None:
    """The embedded document (validated) from an ONNX custom metadata map, or None.

    Raises:
        EdgesmithError: for a document that is too large, not JSON, or fails
            :func:`validate_document`.
    """
    text = custom_metadata.get(KEY)
    return None if text is None else _decode(text, where)


def read_file_metadata(path: str | Path) -> dict[str, Any] | None:
    """The embedded document of a .tflite or .onnx file, read without TensorFlow.

    Raises:
        EdgesmithError: for a missing file or an unknown suffix.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgesmithError(f"model file not found: {path}")
    where = f"{path.name}: {WHERE}"
    if path.suffix == ".tflite":
        return read_tflite_metadata(path.read_bytes(), where=where)
    if path.suffix == ".onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        return read_onnx_metadata(session.get_modelmeta().custom_metadata_map, where=where)
    raise EdgesmithError(f"{path}: expected a .tflite or .onnx file")
