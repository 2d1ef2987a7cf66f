"""Parameter and multiply-accumulate counts of a Keras model, from its layer shapes."""

from __future__ import annotations

import numpy as np

from edgesmith._tensorflow import keras


def _shape(value) -> tuple:
    shape = value[0] if isinstance(value, list) else value
    return tuple(shape)


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one inference (batch 1) over Conv, DepthwiseConv and Dense layers.

    Element-wise work (BatchNorm, activations, adds, pooling) is left out, as MLPerf Tiny's
    12.5 M MACs for ResNet-8 leave it out.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        if not hasattr(layer, "kernel"):
            continue
        out_shape = _shape(layer.output_shape)
        kernel = tuple(layer.kernel.shape)
        positions = int(np.prod([d for d in out_shape[1:-1] if d is not None] or [1]))
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            # kernel (kh, kw, in_c, multiplier): each output value reads kh * kw inputs
            total += positions * out_shape[-1] * kernel[0] * kernel[1]
        elif isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
            total += positions * int(np.prod(kernel))
        elif isinstance(layer, keras.layers.Dense):
            total += positions * int(np.prod(kernel))
    return int(total)


def count_params(model: keras.Model) -> int:
    """All weights, trainable or not (BatchNorm statistics included, as Keras counts them)."""
    return int(model.count_params())
