"""The optimizer of the train stage and of compression's fine-tuning, with its schedules.

Learning rate per step: linear warm-up then cosine decay to zero, or constant.
"""

from __future__ import annotations

import math
from typing import Any

from edgesmith.core.optimizer_plan import OptimizerPlan
from edgesmith.tfkeras.backend import keras, tf


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Rise linearly from 0 to ``peak`` over ``warmup_steps``, then follow a cosine to 0."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        self.peak = float(peak)
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, min(int(warmup_steps), self.total_steps - 1))

    def __call__(self, step):
        """The learning rate at an optimizer step (a scalar tensor)."""
        step = tf.cast(step, tf.float32)
        warm = float(max(1, self.warmup_steps))
        warmup = self.peak * (step + 1.0) / warm
        progress = (step - self.warmup_steps) / float(max(1, self.total_steps - self.warmup_steps))
        progress = tf.clip_by_value(progress, 0.0, 1.0)
        cosine = 0.5 * self.peak * (1.0 + tf.cos(math.pi * progress))
        return tf.where(step < self.warmup_steps, warmup, cosine)

    def get_config(self):
        """Constructor arguments, for Keras serialisation."""
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


NO_DECAY = ["gamma", "beta", "bias"]
"""Variables decoupled weight decay leaves alone: BatchNorm parameters and biases."""


def make_optimizer(name: str, peak_learning_rate: float, **settings: Any):
    """The optimizer of the train stage, reused by compression's fine-tuning.

    Args:
        name: ``sgd`` (Nesterov momentum) or ``adam``.
        peak_learning_rate: the rate after warm-up (or throughout, for ``constant``).
        **settings: the plan's other settings
            (:class:`~edgesmith.core.optimizer_plan.OptimizerPlan`); ``total_steps`` at least.
            tf_keras has no weight averaging: ``ema`` must stay None.
    """
    plan = OptimizerPlan(name, peak_learning_rate, **settings)
    if plan.ema is not None:
        raise ValueError("the tf_keras optimizer does not average weights (ema is Keras 3 only)")
    if plan.schedule == "cosine":
        rate = WarmupCosine(plan.peak_learning_rate, plan.total_steps, plan.warmup_steps)
    else:
        rate = plan.peak_learning_rate
    decay = plan.weight_decay or None
    if plan.name == "sgd":
        optimizer = keras.optimizers.SGD(
            rate, momentum=plan.momentum, nesterov=True, weight_decay=decay
        )
    else:
        optimizer = keras.optimizers.Adam(rate, weight_decay=decay)
    if decay:
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer
