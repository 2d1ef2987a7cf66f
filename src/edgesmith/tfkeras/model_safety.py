"""Decide, before any deserialisation, whether loading a Keras model file would run its code.

tf_keras honours ``safe_mode`` only for a real ``.keras`` zip: an ``.h5`` file, a SavedModel, or an
HDF5 file renamed ``x.keras`` with a ``Lambda`` layer runs the Python bytecode stored in it, and a
config may name any module for Keras to import. So edgesmith reads the model's *config* itself (the
HDF5 ``model_config`` attribute, or the zip's ``config.json``), with the file's real type taken
from its magic bytes rather than its suffix, and refuses, by default, anything that needs code to
load. The user accepts such a file explicitly with ``--trust-model`` (API: ``trust_model=True``, or
the :func:`trusting_model_code` scope for calls that do not take the argument).

This module imports no TensorFlow (h5py only, on use), so commands check their inputs in
milliseconds, before TensorFlow loads.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgesmith.core.errors import EdgesmithError

TRUST_FLAG = "--trust-model"
ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
MAX_CONFIG_BYTES = 64 << 20
"""A model config larger than this (64 MiB) is refused rather than read (a zip bomb)."""
SAFE_MODULES = ("keras", "tf_keras", "tensorflow_model_optimization")
"""Config ``module`` values (and their sub-modules) Keras may import: its own, and tfmot's
(QAT models hold its quantisation wrappers and activations)."""
SAFE_TF_OPS = (
    "__operators__.",
    "math.",
    "nn.",
    "linalg.",
    "image.resize",
    "reshape",
    "concat",
    "transpose",
    "stack",
    "expand_dims",
    "squeeze",
    "cast",
    "identity",
    "clip_by_value",
    "split",
    "compat.v1.squeeze",
    "compat.v1.transpose",
)
"""TensorFlow functions a ``TFOpLambda`` layer may call: arithmetic and shape ops, no I/O."""
MODEL_CLASSES = ("Functional", "Sequential", "Model")
OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")
"""tf_keras' layers for TensorFlow functions called in a functional model (checked by name)."""

_TRUST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "edgesmith_trust_model", default=False
)


@contextlib.contextmanager
def trusting_model_code(enabled: bool = True) -> Iterator[None]:
    """Within the block, loaders called without ``trust_model`` accept code-bearing model files.

    The CLI wraps a command in it when ``--trust-model`` is given; API users may do the same
    around calls that load artifacts (compress techniques, export) instead of passing an argument
    through every layer.
    """
    token = _TRUST.set(bool(enabled))
    try:
        yield
    finally:
        _TRUST.reset(token)


def trusting_handler(handler: Callable[[Any], int]) -> Callable[[Any], int]:
    """Wrap a CLI handler so that its ``args.trust_model`` (``--trust-model``) covers every load.

    Commands reach model files through many layers (a build trains, compresses and exports);
    the scope saves threading the argument through each of them.
    """

    @functools.wraps(handler)
    def run(args: Any) -> int:
        with trusting_model_code(bool(getattr(args, "trust_model", False))):
            return handler(args)

    return run


def model_code_trusted(trust_model: bool | None = None) -> bool:
    """``trust_model`` when given, else whether a :func:`trusting_model_code` block is active."""
    return _TRUST.get() if trust_model is None else bool(trust_model)


@dataclasses.dataclass(frozen=True)
class ModelFileReport:
    """What :func:`inspect_model_file` found.

    Attributes:
        kind: ``hdf5``, ``keras-zip`` or ``savedmodel`` (from the content, not the suffix).
        keras_major: the Keras major version that saved it (2 when it cannot tell).
        reasons: why loading it would run code from the file (empty when it would not).
        layer_classes: the class names of every layer in the config, nested ones included.
    """

    kind: str
    keras_major: int
    reasons: tuple[str, ...]
    layer_classes: tuple[str, ...]


def file_kind(path: Path) -> str:
    """``savedmodel``, ``keras-zip`` or ``hdf5``, decided by content (magic bytes).

    Raises:
        EdgesmithError: for a missing path, a directory without ``saved_model.pb``, a file that
            is neither HDF5 nor zip, or one that is both (a polyglot whose meaning depends on
            which loader reads it).
    """
    if not path.exists():
        raise EdgesmithError(f"model file not found: {path}")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise EdgesmithError(
            f"{path} is a directory but not a SavedModel (no saved_model.pb); expected a Keras "
            "model file (.keras, .h5) or a SavedModel directory"
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise EdgesmithError(f"cannot read model file {path}: {exc.strerror}") from None
    is_hdf5 = head == HDF5_MAGIC or _hdf5_with_user_block(path)
    if is_zip and is_hdf5:
        raise EdgesmithError(
            f"{path} is both an HDF5 and a zip file; refusing an ambiguous model file"
        )
    if is_hdf5:
        return "hdf5"
    if is_zip and head[:4] == ZIP_MAGIC:
        return "keras-zip"
    raise EdgesmithError(
        f"{path} is neither an HDF5 (.h5) nor a .keras zip file (by its content); expected a "
        "Keras model file or a SavedModel directory"
    )


def _hdf5_with_user_block(path: Path) -> bool:
    """HDF5 allows its signature at 512, 1024, 2048... bytes (after a user block)."""
    offset = 512
    size = path.stat().st_size
    with open(path, "rb") as handle:
        while offset + 8 <= size and offset <= 1 << 20:
            handle.seek(offset)
            if handle.read(8) == HDF5_MAGIC:
                return True
            offset *= 2
    return False


def inspect_model_file(path: str | Path) -> ModelFileReport:
    """Read a model file's config (no deserialisation) and list what would run code on load.

    Raises:
        EdgesmithError: for a file that is not a model file, or a config that cannot be read.
    """
    path = Path(path)
    kind = file_kind(path)
    if kind == "savedmodel":
        reason = (
            "it is a SavedModel directory, whose traced TensorFlow functions run when it is "
            "loaded and called"
        )
        return ModelFileReport(kind, 2, (reason,), ())
    config, version = _read_hdf5(path) if kind == "hdf5" else _read_zip(path)
    reasons: list[str] = []
    layers: list[str] = []
    if isinstance(config, dict):
        # edgesmith loads with compile=False, so Keras never deserialises the compile config
        # (the optimizer, which may name edgesmith's own learning-rate schedule)
        config = {key: value for key, value in config.items() if key != "compile_config"}
    if config is not None:
        _walk(config, reasons, layers)
    major = version.split(".")[0]
    known = major.isascii() and major.isdigit() and len(major) <= 3
    return ModelFileReport(
        kind, int(major) if known else 2, tuple(dict.fromkeys(reasons)), tuple(layers)
    )


def _read_hdf5(path: Path) -> tuple[Any, str]:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
            version = handle.attrs.get("keras_version", "2")
    except (OSError, ValueError) as exc:
        raise EdgesmithError(f"cannot read {path} as HDF5: {str(exc).splitlines()[0]}") from None
    version = version.decode() if isinstance(version, bytes) else str(version)
    if raw is None:
        return None, version  # weights only: nothing to deserialise (tf_keras says so on load)
    raw = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return _parse(raw, path), version


def _read_zip(path: Path) -> tuple[Any, str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                return None, "2"  # tf_keras reports the missing config itself
            version = "2"
            if "metadata.json" in names and archive.getinfo("metadata.json").file_size < 1 << 20:
                meta = _parse(archive.read("metadata.json").decode("utf-8", "replace"), path)
                if isinstance(meta, dict):
                    version = str(meta.get("keras_version", "2"))
            if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise EdgesmithError(f"{path}: its config.json is over 64 MiB; refusing to read it")
            raw = archive.read("config.json").decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError) as exc:
        raise EdgesmithError(f"cannot read {path} as a .keras zip: {exc}") from None
    return _parse(raw, path), version


def _parse(raw: str, path: Path) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise EdgesmithError(f"{path}: its model config is not valid JSON ({exc})") from None


def _safe_module(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in SAFE_MODULES)


def _name_of(node: dict) -> str:
    config = node.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    return str(name if name is not None else node.get("name", "?"))


def _walk(node: Any, reasons: list[str], layers: list[str], depth: int = 0) -> None:
    """Collect every construct in a (tf_keras or Keras 3) config that makes Keras run code."""
    if depth > 200:
        reasons.append("its config is nested deeper than 200 levels")
        return
    if isinstance(node, list):
        for item in node:
            _walk(item, reasons, layers, depth + 1)
        return
    if not isinstance(node, dict):
        return
    class_name = node.get("class_name")
    if isinstance(class_name, str):
        _check_object(node, class_name, reasons)
    for key, value in node.items():
        if key == "layers" and isinstance(value, list):
            layers.extend(
                entry["class_name"]
                for entry in value
                if isinstance(entry, dict) and isinstance(entry.get("class_name"), str)
            )
        elif (
            key == "layer" and isinstance(value, dict) and isinstance(value.get("class_name"), str)
        ):
            layers.append(value["class_name"])  # a wrapper's inner layer (QuantizeWrapper...)
        _walk(value, reasons, layers, depth + 1)


def _check_object(node: dict, class_name: str, reasons: list[str]) -> None:
    name = _name_of(node)
    if class_name == "Lambda":
        reasons.append(f"layer {name!r} is a Lambda (Python code stored in the file)")
    elif class_name == "__lambda__":
        reasons.append(f"{name!r} is a Python lambda stored in the file")
    elif class_name in OP_LAYERS:
        config = node.get("config")
        function = config.get("function") if isinstance(config, dict) else None
        if not (isinstance(function, str) and function.startswith(SAFE_TF_OPS)):
            reasons.append(f"layer {name!r} calls the TensorFlow function {function!r}")
    module = node.get("module")
    if module is not None and not (isinstance(module, str) and _safe_module(module)):
        reasons.append(f"{class_name} {name!r} names the Python module {module!r} to import")
    registered = node.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        reasons.append(f"{name!r} is the custom object {registered!r}")


def check_model_file(
    path: str | Path,
    *,
    trust_model: bool | None = None,
    known_layer: Callable[[str], bool] | None = None,
) -> ModelFileReport:
    """Refuse a model file that would run code when loaded, unless the user trusts it.

    Args:
        path: a ``.keras``/``.h5`` file or a SavedModel directory.
        trust_model: accept such files; ``None`` means the :func:`trusting_model_code` scope.
        known_layer: says whether a layer class name is one the loader has built in; classes it
            rejects count as custom code (checked only when given, since it needs the loader,
            and for Keras 2 files: Keras 3 ones name each class's module, checked instead).

    Returns:
        The report (its ``reasons`` are non-empty only for a trusted file that needed it).

    Raises:
        EdgesmithError: naming the first reason and ``--trust-model``, or when the file is not a
            readable model file.
    """
    report = inspect_model_file(path)
    reasons = list(report.reasons)
    if known_layer is not None and report.keras_major < 3:  # Keras 3 configs name modules
        for class_name in dict.fromkeys(report.layer_classes):
            if class_name not in MODEL_CLASSES + OP_LAYERS and not known_layer(class_name):
                reasons.append(f"it uses the layer class {class_name!r}, which is custom code")
    if reasons and not model_code_trusted(trust_model):
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        raise EdgesmithError(
            f"{path}: {reasons[0]}{more}; loading it would run code from the file. Pass "
            f"{TRUST_FLAG} (API: trust_model=True) only if you trust whoever made it"
        )
    return dataclasses.replace(report, reasons=tuple(reasons))
