"""Load a user's Keras model file (.h5, .keras, SavedModel) into tf_keras, and save ours.

Users arrive with models saved by Keras 3 (TensorFlow >= 2.16's default) as often as by Keras 2;
compression needs tf_keras (tfmot), so a Keras 3 ``.keras`` file is rebuilt in tf_keras from its
config and weights, layer by layer, and the manifest says so.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.tfkeras import MODEL_SUFFIXES
from edgesmith.tfkeras.backend import keras, quiet_native_stderr
from edgesmith.tfkeras.model_safety import check_model_file, model_code_trusted

MODEL_FILE = "model.keras"


def save_model(model: keras.Model, path: Path) -> None:
    """Save weights and architecture only: the optimizer state is training's, not the model's."""
    optimizer = model.optimizer
    model.optimizer = None
    try:
        model.save(path)
    finally:
        model.optimizer = optimizer


def load_keras_model(
    path: str | Path, *, quantized: bool = False, trust_model: bool | None = None
) -> tuple[keras.Model, str]:
    """Load a model file for training or evaluation, without its optimizer.

    Safe by default: the file's config is inspected before anything is deserialised
    (:func:`edgesmith.tfkeras.model_safety.check_model_file`), and a file that needs code to load (a
    Lambda layer, a custom or unknown class, a module to import, a SavedModel's traced
    functions) is refused unless the user trusts it.

    Args:
        path: a ``.keras``/``.h5`` file or a SavedModel directory.
        quantized: the model holds tfmot quantisation wrappers (a QAT artifact, whose manifest
            says ``"qat": true``); it is then loaded inside tfmot's ``quantize_scope``.
        trust_model: accept a file that runs code when loaded (``--trust-model``); ``None``
            means the :func:`~edgesmith.tfkeras.model_safety.trusting_model_code` scope (off by
            default).

    Returns:
        The tf_keras model and how it was read: ``tf_keras`` or ``keras3-rebuilt``.

    Raises:
        EdgesmithError: for a missing path, an unsupported kind of file, a file that would run
            code without ``trust_model``, or a file Keras cannot read (the reason is given).
    """
    path = Path(path)
    if not path.exists():
        raise EdgesmithError(f"model file not found: {path}")
    if path.is_file() and path.suffix.lower() not in MODEL_SUFFIXES:
        raise EdgesmithError(
            f"{path}: unsupported model file; expected {', '.join(MODEL_SUFFIXES)} or a SavedModel "
            "directory"
        )
    trusted = model_code_trusted(trust_model)
    scope = contextlib.nullcontext()
    custom: dict = {}
    if quantized:
        from edgesmith.tfkeras.tfmot import tfmot

        scope = tfmot.quantization.keras.quantize_scope()
        for objects in getattr(scope, "custom_objects", ()):  # tfmot's own wrapper classes
            custom.update(objects)
    report = check_model_file(path, trust_model=trusted, known_layer=_known_layer(custom))
    if report.kind == "keras-zip" and path.suffix.lower() != ".keras":
        raise EdgesmithError(
            f"{path} is a .keras zip file named {path.suffix}; rename it to .keras"
        )
    if report.keras_major >= 3 and report.kind != "savedmodel":
        return _rebuild_keras3(path, trusted=trusted), "keras3-rebuilt"
    try:
        with quiet_native_stderr(), scope:
            model = keras.models.load_model(path, compile=False, safe_mode=not trusted)
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
    if not model.built or model.inputs is None:  # every stage reads the input shape next
        raise EdgesmithError(
            f"{path}: the model has no input shape (a Sequential saved before it was built); "
            "expected a model with an Input layer, or one built or trained before saving"
        )
    return model, "tf_keras"


def _known_layer(custom: dict):
    """Built-in tf_keras layers (and tfmot's wrappers inside ``quantize_scope``) need no code."""

    def known(class_name: str) -> bool:
        if class_name in custom:
            return True
        cls = getattr(keras.layers, class_name, None)
        return isinstance(cls, type) and issubclass(cls, keras.layers.Layer)

    return known


def _rebuild_keras3(path: Path, *, trusted: bool = False) -> keras.Model:
    """Read a Keras 3 model with Keras 3, then rebuild it in tf_keras with the same weights."""
    try:
        import keras as keras3
    except ImportError:
        raise EdgesmithError(
            f"{path} was saved by Keras 3; reading it needs the keras package (pip install keras)"
        ) from None
    try:
        with quiet_native_stderr():
            source = keras3.saving.load_model(path, compile=False, safe_mode=not trusted)
    except Exception as exc:  # Keras 3 raises many types for unreadable files
        raise EdgesmithError(
            f"cannot load {path} with Keras 3 ({type(exc).__name__}: {exc})"
        ) from None
    config = json.loads(json.dumps(source.get_config(), default=str))
    try:
        model = _model_from_keras3_config(type(source).__name__, config)
    except EdgesmithError:
        raise
    except Exception as exc:  # an argument tf_keras does not know
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        raise EdgesmithError(
            f"{path} (Keras 3) uses something tf_keras cannot rebuild ({type(exc).__name__}: "
            f"{first}); save it from tf_keras, or as .h5 from Keras 2"
        ) from None
    weights = [np.asarray(w) for w in source.get_weights()]
    if [w.shape for w in weights] != [tuple(w.shape) for w in model.get_weights()]:
        raise EdgesmithError(
            f"{path}: the tf_keras rebuild's weights do not line up with the Keras 3 model's; "
            "cannot transfer them"
        )
    model.set_weights(weights)
    return model


def _model_from_keras3_config(class_name: str, config: dict) -> keras.Model:
    if class_name == "Sequential":
        layers = [_layer_config(entry) for entry in config["layers"]]
        return keras.Sequential.from_config({"name": config.get("name"), "layers": layers})
    return keras.Model.from_config(_functional_config(config))


def _functional_config(config: dict) -> dict:
    layers = []
    for entry in config["layers"]:
        layer = _layer_config(entry)
        layer["name"] = entry.get("name", layer["config"].get("name"))
        layer["inbound_nodes"] = [_inbound_node(node) for node in entry.get("inbound_nodes", [])]
        layers.append(layer)
    return {
        "name": config.get("name"),
        "layers": layers,
        "input_layers": _tensor_refs(config["input_layers"]),
        "output_layers": _tensor_refs(config["output_layers"]),
    }


def _tensor_refs(refs: list) -> list:
    """Keras 3 writes one reference flat (``["name", 0, 0]``); tf_keras wants a list of them."""
    if len(refs) == 3 and isinstance(refs[0], str):
        return [refs]
    return refs


def _inbound_node(node) -> list:
    """Keras 3's ``{"args": [...], "kwargs": {...}}`` node as tf_keras' list of inputs."""
    if isinstance(node, list):  # already the tf_keras form
        return node
    inputs = []

    def collect(value) -> None:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            layer, node_index, tensor_index = value["config"]["keras_history"]
            inputs.append([layer, node_index, tensor_index, {}])
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)

    collect(node.get("args", []))
    return inputs


def _layer_config(entry: dict) -> dict:
    """One layer's Keras 3 config, reduced to what the tf_keras class of that name accepts.

    Initializers are dropped (the weights are copied afterwards); dtype policies become names.
    """
    import inspect

    class_name = entry["class_name"]
    config = _plain_dtypes(entry.get("config", {}))
    if class_name in ("Functional", "Model", "Sequential"):
        nested = _model_from_keras3_config(class_name, config)
        return {"class_name": nested.__class__.__name__, "config": nested.get_config()}
    cls = getattr(keras.layers, class_name, None)
    if cls is None:
        raise EdgesmithError(
            f"layer {config.get('name', '?')!r} is a {class_name}, which tf_keras does not have"
        )
    if class_name == "InputLayer":
        config["batch_input_shape"] = config.pop("batch_shape", config.get("batch_input_shape"))
        config.pop("optional", None)
    accepted = set(inspect.signature(cls.__init__).parameters) | {
        "name",
        "trainable",
        "dtype",
        "batch_input_shape",
        "input_shape",
    }
    config = {
        key: value
        for key, value in config.items()
        if key in accepted and not key.endswith("_initializer")
    }
    return {"class_name": class_name, "config": config}


def _plain_dtypes(node):
    if isinstance(node, list):
        return [_plain_dtypes(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and "config" in node:
        return node["config"].get("name", "float32")
    return {key: _plain_dtypes(value) for key, value in node.items()}


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
    if inputs is None or model.outputs is None:  # a Sequential saved before it was built
        raise EdgesmithError(
            f"{where}: the model has no input shape (a Sequential saved before it was built); "
            "expected a model with an Input layer or a built model"
        )
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
