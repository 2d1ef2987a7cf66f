"""The one place the compress stage imports tfmot: after tf_keras is chosen, its noise silenced.

tfmot works only on tf_keras models and flips ``TF_USE_LEGACY_KERAS`` itself when imported first;
importing :mod:`edgesmith.tfkeras.backend` before it makes the choice explicit. tfmot 0.8.1 also
compares versions with ``distutils``, which warns on every import.
"""

from __future__ import annotations

import warnings

from edgesmith.tfkeras.backend import tf  # noqa: F401  (selects tf_keras before tfmot loads)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import tensorflow_model_optimization as tfmot

__all__ = ["tfmot"]
