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

from edgesmith.core.errors import EdgesmithError
from edgesmith.tfkeras.backend import tf  # noqa: F401  (selects tf_keras before tfmot loads)

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import tensorflow_model_optimization as tfmot
except ImportError as exc:
    missing = getattr(exc, "name", None) or ""
    if missing.split(".")[0] == "distutils":
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        raise EdgesmithError(
            "compression needs tensorflow-model-optimization, which imports distutils, missing "
            f"from this Python {python} (3.12 dropped it): pip install setuptools (it provides "
            "distutils)"
        ) from None
    if missing == "tensorflow_model_optimization":
        raise EdgesmithError(
            "compression needs tensorflow-model-optimization: pip install 'edgesmith[compress]'"
        ) from None
    raise EdgesmithError(f"tensorflow-model-optimization failed to import: {exc}") from exc

__all__ = ["tfmot"]
