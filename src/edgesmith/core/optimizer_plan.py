"""The optimizer and learning-rate schedule of a run, as plain settings (no framework).

The tf_keras trainer and compression's fine-tuning (``edgesmith.tfkeras.optimizer``) and the
Keras 3 trainer (``edgesmith.train.keras3_recipe``) each build their own Keras's optimizer, from
the same settings declared once here, so that every run warms up, decays and averages alike.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class OptimizerPlan:
    """What ``make_optimizer`` builds: the optimizer, its rate per step and its weight decay.

    Attributes:
        name: ``sgd`` (Nesterov momentum) or ``adam``.
        peak_learning_rate: the rate after warm-up (or throughout, for ``constant``).
        total_steps: optimizer steps of the whole run (the cosine reaches zero there).
        warmup_steps: steps of linear warm-up.
        schedule: ``cosine`` or ``constant``.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay; BatchNorm parameters and biases are excluded.
        ema: decay of an exponential moving average of the weights (Keras' ``use_ema``); at
            the end of ``fit`` Keras writes the averages into the model. None: no averaging
            (Keras 3 only).
    """

    name: str
    peak_learning_rate: float
    total_steps: int
    warmup_steps: int = 0
    schedule: str = "cosine"
    momentum: float = 0.9
    weight_decay: float = 0.0
    ema: float | None = None
