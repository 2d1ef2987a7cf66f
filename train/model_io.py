"""Load a user's Keras model file (.h5, .keras, SavedModel) into tf_keras, and save ours.

Users arrive with models saved by Keras 3 (TensorFlow >= 2.16's default) as often as by Keras 2;
compression needs tf_keras (tfmot), so a Keras 3 ``.keras`` file is rebuilt in tf_keras from its
config and weights, layer by layer, and the manifest says so.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from edgesmith._tensorflow import keras, quiet_native_stderr
from edgesmith.errors import EdgesmithError

MODEL_FILE = "model.keras"
SUFFIXES = (".keras", ".h5", ".hdf5")


def save_model(model: keras.Model, path: Path) -> None:
    """Save weights and architecture only: the optimizer state is training's, not the model's."""
    optimizer = model.optimizer
    model.optimizer = None
    try:
        model.save(path)
    finally:
        model.optimizer = optimizer


def looks_like_model_path(text: str) -> bool:
    """Whether a ``--model`` value names a file or directory rather than a zoo model."""
    return Path(text).suffix.lower() in SUFFIXES or "/" in text or Path(text).exists()


def load_keras_model(path: str | Path) -> tuple[keras.Model, str]:
    """Load a model file for training or evaluation, without its optimizer.

    Returns:
        The tf_keras model and how it was read: ``tf_keras`` or ``keras3-rebuilt``.

    Raises:
        EdgesmithError: for a missing path, an unsupported kind of file, or a file Keras cannot
            read (the reason is given).
    """
    path = Path(path)
    if not path.exists():
        raise EdgesmithError(f"model file not found: {path}")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise EdgesmithError(
                f"{path} is a directory but not a SavedModel (no saved_model.pb); expected a "
                f"Keras model file ({', '.join(SUFFIXES)}) or a SavedModel directory"
            )
    elif path.suffix.lower() not in SUFFIXES:
        raise EdgesmithError(
            f"{path}: unsupported model file; expected {', '.join(SUFFIXES)} or a SavedModel "
            "directory"
        )
    if path.suffix.lower() == ".keras" and _keras_major(path) >= 3:
        return _rebuild_keras3(path), "keras3-rebuilt"
    try:
        with quiet_native_stderr():
            model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises ValueError, OSError, TypeError... all mean "unreadable"
        raise EdgesmithError(
            f"cannot load {path} as a tf_keras model ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    if not isinstance(model, keras.Model):
        raise EdgesmithError(
            f"{path} is a plain TensorFlow SavedModel without Keras metadata; save the model "
            "with model.save('model.keras') or model.save('model.h5') instead"
        )
    return model, "tf_keras"


def _keras_major(path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read("metadata.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError):
        return 2  # let tf_keras try and report its own reason
    return int(str(meta.get("keras_version", "2")).split(".")[0])


def _rebuild_keras3(path: Path) -> keras.Model:
    """Read a Keras 3 model with Keras 3, then rebuild it in tf_keras with the same weights."""
    try:
        import keras as keras3
    except ImportError:
        raise EdgesmithError(
            f"{path} was saved by Keras 3; reading it needs the keras package (pip install keras)"
        ) from None
    try:
        with quiet_native_stderr():
            source = keras3.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras 3 raises many types for unreadable files
        raise EdgesmithError(
            f"cannot load {path} with Keras 3 ({type(exc).__name__}: {exc})"
        ) from None
    config = json.loads(json.dumps(source.get_config(), default=str))
    try:
        model = (
            keras.Model.from_config(_to_tf_keras_config(config))
            if not _is_sequential(source)
            else keras.Sequential.from_config(_to_tf_keras_config(config))
        )
    except Exception as exc:  # an unknown layer or argument in tf_keras
        raise EdgesmithError(
            f"{path} (Keras 3) uses something tf_keras cannot rebuild ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}); save it from tf_keras or as .h5 instead"
        ) from None
    weights = [np.asarray(w) for w in source.get_weights()]
    if len(weights) != len(model.get_weights()):
        raise EdgesmithError(
            f"{path}: rebuilt model has {len(model.get_weights())} weight arrays, the Keras 3 "
            f"model {len(weights)}; cannot transfer the weights"
        )
    model.set_weights(weights)
    return model


def _is_sequential(model) -> bool:
    return type(model).__name__ == "Sequential"


def _to_tf_keras_config(node):
    """Translate Keras 3 config idioms that tf_keras does not know into tf_keras ones."""
    if isinstance(node, list):
        return [_to_tf_keras_config(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and "config" in node:
        return node["config"].get("name", "float32")
    out = {}
    for key, value in node.items():
        if key == "batch_shape":
            out["batch_input_shape"] = value
        elif key in ("optional",) and node.get("class_name") != "InputLayer":
            out[key] = value
        elif key == "optional":
            continue
        else:
            out[key] = _to_tf_keras_config(value)
    return out


def output_kind(model: keras.Model, sample: np.ndarray) -> str:
    """``probabilities`` if the model ends in softmax (by layer or by outputs), else ``logits``."""
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Softmax) or getattr(activation, "__name__", "") == "softmax":
        return "probabilities"
    out = np.asarray(model(sample[:32], training=False))
    sums = out.sum(axis=-1)
    if out.min() >= 0 and out.max() <= 1 and np.allclose(sums, 1.0, atol=1e-3):
        return "probabilities"
    return "logits"


def check_model_fits(
    model: keras.Model, input_shape: tuple[int, ...], num_classes: int, where: str
) -> None:
    """Refuse a model whose input or output does not match the data.

    Raises:
        EdgesmithError: naming the model's shape and the data's.
    """
    inputs = model.inputs
    if len(inputs) != 1 or len(model.outputs) != 1:
        raise EdgesmithError(
            f"{where}: expected one input and one output; the model has {len(inputs)} input(s) "
            f"and {len(model.outputs)} output(s)"
        )
    model_in = tuple(inputs[0].shape[1:])
    if len(model_in) != len(input_shape) or any(
        m is not None and m != d for m, d in zip(model_in, input_shape, strict=True)
    ):
        raise EdgesmithError(
            f"{where}: the model takes inputs shaped {model_in} but the data's images are "
            f"{tuple(input_shape)} (H, W, C)"
        )
    model_out = tuple(model.outputs[0].shape[1:])
    if model_out != (num_classes,):
        raise EdgesmithError(
            f"{where}: the model outputs {model_out} but the data has {num_classes} classes"
        )
