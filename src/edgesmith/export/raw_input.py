"""Fold the input normalisation into the model, so an exported file takes raw camera pixels.

A device then feeds pixels as they come (float pixels, uint8 pixels, or pixel - 128 as int8,
as MLCommons' reference int8 ResNet-8 does) and runs no float preprocessing. Where the model
starts with a convolution and the normalisation has no offset (``unit``, ``raw`` and any
``mean = 0`` record), the per-channel factor goes into that convolution's kernel: exact, and
no extra op. Otherwise an affine layer (``x * a + b`` per channel) goes in front; folding an
offset into a 'same'-padded convolution is not exact, since its zero padding would then pad
raw pixels instead of normalised ones.
"""

from __future__ import annotations

import numpy as np

from edgesmith.core.normalization import Normalization
from edgesmith.tfkeras.backend import keras

FOLDABLE = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


def affine_terms(norm: Normalization, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``a`` and ``b`` with ``(p * scale - mean) / std == p * a + b``."""
    mean = np.broadcast_to(np.asarray(norm.mean, dtype=np.float64), (channels,))
    std = np.broadcast_to(np.asarray(norm.std, dtype=np.float64), (channels,))
    return norm.scale / std, -mean / std


def with_raw_input(model: keras.Model, norm: Normalization) -> tuple[keras.Model, str]:
    """Return a model that computes ``model(norm.apply(pixels))`` from raw pixels.

    Args:
        model: the source tf_keras model (left unchanged).
        norm: the normalisation it was trained with.

    Returns:
        The raw-pixel model and how the folding was done: ``kernel:<layer>`` or ``affine``.
    """
    channels = int(model.inputs[0].shape[-1])
    scale, offset = affine_terms(norm, channels)
    if np.allclose(scale, 1.0) and np.allclose(offset, 0.0):
        return model, "identity"
    first = _first_consumer(model)
    if first is not None and np.allclose(offset, 0.0):
        return _fold_into_kernel(model, first, scale), f"kernel:{first.name}"
    return _prepend_affine(model, scale, offset), "affine"


def _first_consumer(model: keras.Model):
    """The conv layer fed directly (and only) by the model input, if there is exactly one."""
    if isinstance(model, keras.Sequential):
        layer = model.layers[0] if model.layers else None
        return layer if type(layer) in FOLDABLE else None
    config = model.get_config()
    input_names = {entry[0] for entry in config.get("input_layers", [])}
    consumers = [
        spec["name"]
        for spec in config.get("layers", [])
        if any(
            inbound[0] in input_names
            for node in spec.get("inbound_nodes", [])
            for inbound in node
            if isinstance(inbound, (list, tuple))
        )
    ]
    if len(consumers) != 1:
        return None
    layer = model.get_layer(consumers[0])
    return layer if type(layer) in FOLDABLE else None


def _fold_into_kernel(model: keras.Model, layer, scale: np.ndarray) -> keras.Model:
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    target = clone.get_layer(layer.name)
    weights = target.get_weights()
    kernel = weights[0]
    # Conv2D kernel (kh, kw, in, out); DepthwiseConv2D (kh, kw, in, multiplier): axis 2 is input.
    weights[0] = (kernel * scale.reshape(1, 1, -1, 1)).astype(kernel.dtype)
    target.set_weights(weights)
    return clone


def _prepend_affine(model: keras.Model, scale: np.ndarray, offset: np.ndarray) -> keras.Model:
    inputs = keras.Input(tuple(model.inputs[0].shape[1:]), name="pixels")
    x = keras.layers.Rescaling(
        scale.astype(np.float32).tolist(), offset.astype(np.float32).tolist(), name="normalize"
    )(inputs)
    return keras.Model(inputs, model(x), name=f"{model.name}_raw_input")
