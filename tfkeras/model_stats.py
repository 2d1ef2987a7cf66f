"""Parameter and multiply-accumulate counts of a Keras model, from its layer shapes."""

from __future__ import annotations

import numpy as np

from edgesmith.tfkeras.backend import keras


def _shape(value) -> tuple:
    shape = value[0] if isinstance(value, list) else value
    return tuple(shape)


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one inference (batch 1) over conv and dense layers.

    Element-wise work (BatchNorm, activations, adds, pooling) is left out, as MLPerf Tiny's
    12.5 M MACs for ResNet-8 leave it out.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        out_shape = _shape(layer.output_shape) if hasattr(layer, "output_shape") else ()
        positions = int(np.prod([d for d in out_shape[1:-1] if d is not None] or [1]))
        depthwise = getattr(layer, "depthwise_kernel", None)
        if depthwise is not None:
            # (*kernel, in_c, multiplier), 1-D or 2-D: each output value reads the window only
            *window, in_c, mult = tuple(depthwise.shape)
            total += positions * in_c * mult * int(np.prod(window))
            pointwise = getattr(layer, "pointwise_kernel", None)  # SeparableConv
            if pointwise is not None:
                total += positions * int(np.prod(tuple(pointwise.shape)))
        elif getattr(layer, "kernel", None) is not None:
            total += positions * int(np.prod(tuple(layer.kernel.shape)))
    return int(total)


def count_params(model: keras.Model) -> int:
    """All weights, trainable or not (BatchNorm statistics included, as Keras counts them)."""
    return int(model.count_params())
