"""Multiply-accumulates of a Keras model, from its layer shapes, for tf_keras and Keras 3 alike.

Read by duck typing (layers, kernels, output shapes), so the tf_keras stages and the Keras 3
trainer count the same way without this module importing either Keras.
"""

from __future__ import annotations

import math
from typing import Any


def _output_shape(layer: Any) -> tuple:
    """The layer's output shape: ``output_shape`` in tf_keras, ``output.shape`` in Keras 3."""
    for read in (lambda: layer.output_shape, lambda: layer.output.shape):
        try:
            shape = read()
        except (AttributeError, ValueError):
            continue
        return tuple(shape[0] if isinstance(shape, list) else shape)
    return ()


def count_macs(model: Any) -> int:
    """Multiply-accumulates of one inference (batch 1) over conv and dense layers.

    Element-wise work (BatchNorm, activations, adds, pooling) is left out, as MLPerf Tiny's
    12.5 M MACs for ResNet-8 leave it out. Nested models are counted through.
    """
    total = 0
    for layer in model.layers:
        if isinstance(getattr(layer, "layers", None), list):
            total += count_macs(layer)
            continue
        positions = math.prod(d for d in _output_shape(layer)[1:-1] if d is not None)
        depthwise = getattr(layer, "depthwise_kernel", None)
        if depthwise is not None:
            # (*kernel, in_c, multiplier), 1-D or 2-D: each output value reads the window only
            *window, in_c, mult = tuple(depthwise.shape)
            total += positions * in_c * mult * math.prod(window)
            pointwise = getattr(layer, "pointwise_kernel", None)  # SeparableConv
            if pointwise is not None:
                total += positions * math.prod(tuple(pointwise.shape))
        elif getattr(layer, "kernel", None) is not None:
            total += positions * math.prod(tuple(layer.kernel.shape))
    return int(total)
