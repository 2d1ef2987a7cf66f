"""Multiply-accumulates of a Keras model, from its layer shapes, for tf_keras and Keras 3 alike.

Read by duck typing (layers, kernels, output shapes), so the tf_keras stages and the Keras 3
trainer count the same way without this module importing either Keras.
"""

from __future__ import annotations

import math
from typing import Any


def _output_shape(layer: Any) -> tuple | None:
    """The output shape (tf_keras ``output_shape``, Keras 3 ``output.shape``); None: unknown."""
    for read in (lambda: layer.output_shape, lambda: layer.output.shape):
        try:
            shape = read()
        except (AttributeError, ValueError, TypeError):
            continue
        if isinstance(shape, list):
            shape = shape[0]
        try:
            return tuple(shape)
        except TypeError:
            continue
    return None


def count_macs(model: Any, *, strict: bool = False) -> int:
    """Multiply-accumulates of one inference (batch 1) over conv and dense layers.

    Element-wise work (BatchNorm, activations, adds, pooling) is left out, as MLPerf Tiny's
    12.5 M MACs for ResNet-8 leave it out. Nested models are counted through; a layer called
    twice (shared) is counted once.

    Args:
        model: a tf_keras or Keras 3 model.
        strict: raise ValueError when a layer with weights has no known output shape (a
            subclassed or never-called model) instead of counting its kernel once.
    """
    total = 0
    for layer in model.layers:
        if isinstance(getattr(layer, "layers", None), list):
            total += count_macs(layer, strict=strict)
            continue
        shape = _output_shape(layer)
        if shape is None:
            if strict and getattr(layer, "kernel", None) is not None:
                raise ValueError(f"layer {layer.name!r} has no known output shape")
            shape = ()
        positions = math.prod(d for d in shape[1:-1] if d is not None)
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
