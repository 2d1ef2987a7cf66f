"""Where a model's preprocessing and labels come from: a manifest, embedded metadata, or nowhere.

Three kinds of path reach the runtime: an artifact directory (manifest.json beside the model),
an exported file carrying the same records embedded, and a foreign file with neither. This
module finds the model file and, for artifacts, the manifest's records.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgesmith.core.artifacts import MANIFEST_NAME, read_artifact
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.safe_files import check_regular_file

SUFFIX_FORMATS = {".tflite": "tflite", ".onnx": "onnx"}

MAX_MODEL_BYTES = 2 * 2**30
"""A .tflite or .onnx file past 2 GiB is no edge model (and protobuf stops at 2 GiB)."""


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A model file and what is known about it before it is loaded.

    Attributes:
        file: the .tflite or .onnx file.
        format: ``tflite`` or ``onnx``.
        records: the manifest's ``labels``, ``input``, ``output`` and ``macs`` (artifacts only;
            for bare files the runner reads the embedded copy after loading).
        artifact: the artifact directory, when there is one.
    """

    file: Path
    format: str
    records: dict[str, Any] | None = None
    artifact: Path | None = None


def _format_of(file: Path) -> str:
    fmt = SUFFIX_FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise EdgesmithError(
            f"{file}: expected a .tflite or .onnx file or an artifact directory. "
            f"Received a {file.suffix or 'suffix-less'} file"
        )
    return fmt


def locate(path: str | Path) -> ModelSource:
    """Resolve a user's path to the model file, reading the manifest when there is one.

    Raises:
        EdgesmithError: for a missing path, another file type, a Keras artifact (not exported
            yet), or a corrupt manifest.
    """
    path = Path(path)
    if not path.exists():
        raise EdgesmithError(f"model not found: {path}")
    in_artifact = path.is_file() and (path.parent / MANIFEST_NAME).is_file()
    if path.is_dir() or in_artifact:
        artifact = read_artifact(path)
        manifest = artifact.manifest
        if in_artifact and artifact.model_path.resolve() != path.resolve():
            fmt = _format_of(path)
            check_regular_file(path, "model", MAX_MODEL_BYTES)
            return ModelSource(path, fmt)
        if artifact.format not in SUFFIX_FORMATS.values():
            raise EdgesmithError(
                f"{artifact.path} holds a {artifact.format} model; the runtime runs exported "
                "files: edgesmith export --from DIR --format tflite-int8,onnx --out OUT"
            )
        records = {
            "labels": list(manifest.labels),
            "input": manifest.input.to_dict(),
            "output": manifest.output.to_dict() if manifest.output is not None else None,
            "macs": manifest.metrics.macs,
        }
        check_regular_file(artifact.model_path, "model", MAX_MODEL_BYTES)
        return ModelSource(artifact.model_path, artifact.format, records, artifact.path)
    fmt = _format_of(path)
    check_regular_file(path, "model", MAX_MODEL_BYTES)  # not a FIFO, a device, /dev/zero
    return ModelSource(path, fmt)


def expand_paths(paths: list[str]) -> list[str]:
    """Replace a directory of exported artifacts by the artifacts inside it.

    ``edgesmith export --out DIR`` writes one sub-directory per format; ``edgesmith bench DIR``
    then measures them all. Other paths are kept as given (and checked when loaded).
    """
    expanded = []
    for given in paths:
        path = Path(given)
        if path.is_dir() and not (path / MANIFEST_NAME).is_file():
            inner = sorted(
                child
                for child in path.iterdir()
                if (child / MANIFEST_NAME).is_file() and _exported(child)
            )
            if inner:
                expanded += [str(child) for child in inner]
                continue
        expanded.append(given)
    return expanded


def _exported(folder: Path) -> bool:
    try:
        return read_artifact(folder, verify=False).format in SUFFIX_FORMATS.values()
    except (OSError, EdgesmithError):
        return False  # not readable as a manifest: the directory is not expanded into it
