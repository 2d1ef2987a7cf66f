"""The train stage: a model zoo, tf.data pipelines and a training loop on tf_keras.

``TrainConfig`` imports without TensorFlow (so settings are checked in milliseconds); the other
names load TensorFlow, with tf_keras selected, on first use.
"""

from __future__ import annotations

import importlib

from edgesmith.train.config import TrainConfig

_LAZY = {
    "train": "edgesmith.train.trainer",
    "import_model": "edgesmith.train.importer",
    "build_model": "edgesmith.train.zoo",
    "ZOO": "edgesmith.train.zoo",
}
__all__ = ["ZOO", "TrainConfig", "build_model", "import_model", "train"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgesmith.train' has no attribute {name!r}")
