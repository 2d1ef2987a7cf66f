"""``edgesmith build``: the best model for a device, with the evidence, in one call.

Train (or start from a trained artifact), compress each candidate, export it to the device
profile's formats, bench every file (here or on the device over SSH), choose the candidate that
meets every budget with the best accuracy, and write a deployable bundle::

    from edgesmith.app.build import build
    result = build("cpu-x86", "digits", "runs/build")
    print(result.table()); print(result.bundle)

Importing this package loads no TensorFlow: recipes are validated in plain Python and the stages
load on first use.
"""

from __future__ import annotations

from edgesmith.app.build.recipe import BuildRecipe, CandidateSpec, load_recipe, shipped_recipes
from edgesmith.core.lazy import lazy_getattr

_LAZY = {
    "build": "edgesmith.app.build.pipeline",
    "BuildResult": "edgesmith.app.build.pipeline",
    "DEFAULT_TIMING": "edgesmith.app.build.pipeline",
}
__all__ = [
    "DEFAULT_TIMING",
    "BuildRecipe",
    "BuildResult",
    "CandidateSpec",
    "build",
    "load_recipe",
    "shipped_recipes",
]


__getattr__ = lazy_getattr("edgesmith.app.build", _LAZY)
