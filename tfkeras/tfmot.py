"""The one place edgesmith imports tfmot: after tf_keras is chosen, its noise silenced.

tfmot works only on tf_keras models and flips ``TF_USE_LEGACY_KERAS`` itself when imported first;
importing :mod:`edgesmith.tfkeras.backend` before it makes the choice explicit. tfmot 0.8.1 also
compares versions with ``distutils``, which warns on every import and which Python 3.12 no longer
ships (setuptools provides it again): a missing tfmot or distutils is one line naming the fix,
not a traceback.
"""

from __future__ import annotations

import sys
import warnings

from edgesmith.errors import EdgesmithError
from edgesmith.tfkeras.backend import tf  # noqa: F401  (selects tf_keras before tfmot loads)

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import tensorflow_model_optimization as tfmot
except ImportError as exc:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if (getattr(exc, "name", None) or "").split(".")[0] == "distutils":
        raise EdgesmithError(
            "compression needs tensorflow-model-optimization, which imports distutils, not "
            f"shipped with Python {python}: pip install setuptools (it provides distutils)"
        ) from None
    raise EdgesmithError(
        f"compression needs tensorflow-model-optimization ({exc}): "
        "pip install 'edgesmith[compress]'"
    ) from None

__all__ = ["tfmot"]
