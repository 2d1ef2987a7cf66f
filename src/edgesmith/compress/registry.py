"""The technique registry: recipe key -> (config class, function), loaded without TensorFlow.

Every technique has the same shape, ``run(source, config, out, *, report) -> Artifact``, so a
recipe step is just a key and a mapping of its config's fields. The functions are named by module
and attribute and imported on first use, so that a recipe is validated in milliseconds.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

from edgesmith.compress.config import (
    AutotuneConfig,
    ClusterConfig,
    DistillConfig,
    PruneConfig,
    QatConfig,
)
from edgesmith.core.config import Config


@dataclasses.dataclass(frozen=True)
class Technique:
    """A registry entry: its config class and where its function lives."""

    config: type[Config]
    module: str
    function: str

    def load(self) -> Callable:
        """Import the technique's function (this loads TensorFlow)."""
        return getattr(importlib.import_module(self.module), self.function)


TECHNIQUES: dict[str, Technique] = {
    "prune": Technique(PruneConfig, "edgesmith.compress.pruning", "prune"),
    "qat": Technique(QatConfig, "edgesmith.compress.quantization_aware", "qat"),
    "distill": Technique(DistillConfig, "edgesmith.compress.distillation", "distill"),
    "cluster": Technique(ClusterConfig, "edgesmith.compress.clustering", "cluster"),
    "quantize": Technique(AutotuneConfig, "edgesmith.compress.autotune", "quantize_within_budget"),
}
