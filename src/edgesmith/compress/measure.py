"""What a compressed model really is, measured from its weights: sparsity, 2:4 pattern, palettes.

Manifests record these measurements, never the targets: tfmot's schedule can land short of its
target (the last mask update decides), and a user trusting a number must be able to re-measure it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from edgesmith.tfkeras.backend import keras

KERNEL_LAYERS = ("Conv2D", "Conv1D", "Dense", "DepthwiseConv2D", "SeparableConv2D")


def unwrap(layer):
    """The layer inside tfmot wrappers (pruning, clustering, quantisation)."""
    while hasattr(layer, "layer") and isinstance(layer.layer, keras.layers.Layer):
        layer = layer.layer
    return layer


def kernels(model: keras.Model) -> Iterator[tuple[str, str, np.ndarray]]:
    """Yield ``(layer name, class name, kernel)`` for each conv/dense layer, nested models too.

    Wrapped layers (pruning, clustering, QAT) yield the float kernel they hold.
    """
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from kernels(layer)
            continue
        inner = unwrap(layer)
        kind = type(inner).__name__
        if kind not in KERNEL_LAYERS:
            continue
        kernel = getattr(inner, "depthwise_kernel", None) if kind == "DepthwiseConv2D" else None
        kernel = kernel if kernel is not None else getattr(inner, "kernel", None)
        if kernel is None:
            continue
        yield layer.name, kind, np.asarray(kernel.numpy())


def sparsity_report(model: keras.Model) -> dict:
    """Fraction of exact zeros per layer and overall, over conv and dense kernels.

    Returns:
        ``{"sparsity": overall, "sparsity_per_layer": {name: fraction},
        "kernel_weights": count}``.
    """
    per_layer = {}
    zeros = total = 0
    for name, _, kernel in kernels(model):
        layer_zeros = int(np.count_nonzero(kernel == 0))
        per_layer[name] = round(layer_zeros / kernel.size, 6)
        zeros += layer_zeros
        total += kernel.size
    return {
        "sparsity": round(zeros / total, 6) if total else 0.0,
        "sparsity_per_layer": per_layer,
        "kernel_weights": int(total),
    }


def is_2_by_4(kernel: np.ndarray) -> bool:
    """Whether every group of 4 consecutive input channels holds at least 2 zeros.

    The groups run along the input-channel axis of TFLite's layout (``[out, h, w, in]`` for a
    conv, ``[out, in]`` for a dense layer), where sparse kernels consume them; a last partial
    group is padded with zeros, as tfmot pads it.
    """
    if kernel.ndim == 4:
        rows = np.transpose(kernel, (3, 0, 1, 2)).reshape(-1, kernel.shape[2])
    elif kernel.ndim == 2:
        rows = kernel.T
    else:
        return False
    pad = (-rows.shape[1]) % 4
    rows = np.pad(rows, ((0, 0), (0, pad)))
    groups = rows.reshape(rows.shape[0], -1, 4)
    return bool(np.all(np.count_nonzero(groups == 0, axis=-1) >= 2))


def pattern_report(model: keras.Model, layers: list[str]) -> dict[str, bool]:
    """The 2:4 check for each named layer."""
    found = {name: kernel for name, _, kernel in kernels(model)}
    return {name: is_2_by_4(found[name]) for name in layers if name in found}


def unique_values(model: keras.Model) -> dict[str, int]:
    """Distinct kernel values per conv/dense layer (a clustered layer has at most K)."""
    return {name: int(np.unique(kernel).size) for name, _, kernel in kernels(model)}
