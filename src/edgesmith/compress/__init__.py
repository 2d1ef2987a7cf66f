"""The compress stage: each technique turns one Keras artifact into a new one.

Pruning (unstructured, 2:4, channels), QAT, distillation, clustering, sensitivity analysis and
an int8 accuracy budget.

Importing this package loads no TensorFlow (configs and the registry are plain Python); the
techniques load it on first use::

    from edgesmith.compress import PruneConfig, prune
    prune("runs/r8", PruneConfig(sparsity=0.75, epochs=8), "runs/r8-p75")
"""

from __future__ import annotations

from edgesmith.compress.config import (
    AutotuneConfig,
    ChannelPruneConfig,
    ClusterConfig,
    DistillConfig,
    FinetuneConfig,
    PruneConfig,
    QatConfig,
    SensitivityConfig,
)
from edgesmith.compress.registry import TECHNIQUES
from edgesmith.core.lazy import lazy_getattr

_LAZY = {
    "prune": "edgesmith.compress.pruning",
    "prune_channels": "edgesmith.compress.channel_pruning",
    "qat": "edgesmith.compress.quantization_aware",
    "distill": "edgesmith.compress.distillation",
    "cluster": "edgesmith.compress.clustering",
    "analyse_sensitivity": "edgesmith.compress.sensitivity",
    "quantize_within_budget": "edgesmith.compress.autotune",
    "run_recipe": "edgesmith.compress.recipes",
}
__all__ = [
    "TECHNIQUES",
    "AutotuneConfig",
    "ClusterConfig",
    "DistillConfig",
    "FinetuneConfig",
    "ChannelPruneConfig",
    "PruneConfig",
    "QatConfig",
    "SensitivityConfig",
    *_LAZY,
]


__getattr__ = lazy_getattr("edgesmith.compress", _LAZY)
