"""The train stage: a model zoo, tf.data pipelines and a training loop on tf_keras.

``TrainConfig`` imports without TensorFlow (so settings are checked in milliseconds); the other
names load TensorFlow, with tf_keras selected, on first use. ``train_keras3`` trains with Keras 3
on JAX, PyTorch or TensorFlow instead and never loads tf_keras.
"""

from __future__ import annotations

from edgesmith.core.lazy import lazy_getattr
from edgesmith.train.config import MODEL_NAMES, TrainConfig, resolve_augment

_LAZY = {
    "train": "edgesmith.train.trainer",
    "train_keras3": "edgesmith.train.keras3_trainer",
    "import_model": "edgesmith.train.importer",
    "build_model": "edgesmith.train.zoo",
    "ZOO": "edgesmith.train.zoo",
}
__all__ = [
    "MODEL_NAMES",
    "ZOO",
    "TrainConfig",
    "build_model",
    "import_model",
    "resolve_augment",
    "train",
    "train_keras3",
]


__getattr__ = lazy_getattr("edgesmith.train", _LAZY)
