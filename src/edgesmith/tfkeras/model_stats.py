"""Parameter and multiply-accumulate counts of a Keras model, from its layer shapes."""

from __future__ import annotations

from edgesmith.core.model_macs import count_macs
from edgesmith.tfkeras.backend import keras

__all__ = ["count_macs", "count_params"]


def count_params(model: keras.Model) -> int:
    """All weights, trainable or not (BatchNorm statistics included, as Keras counts them)."""
    return int(model.count_params())
