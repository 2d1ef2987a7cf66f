"""The optimizer of the train stage and of compression's fine-tuning, with its schedules.

Learning rate per step: linear warm-up then cosine decay to zero, or constant.
"""

from __future__ import annotations

import math

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


def make_optimizer(
    name: str,
    peak_learning_rate: float,
    *,
    total_steps: int,
    warmup_steps: int = 0,
    schedule: str = "cosine",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
):
    """The optimizer of the train stage, reused by compression's fine-tuning.

    Args:
        name: ``sgd`` (Nesterov momentum) or ``adam``.
        peak_learning_rate: the rate after warm-up (or throughout, for ``constant``).
        total_steps: optimizer steps of the whole run (the cosine reaches zero there).
        warmup_steps: steps of linear warm-up.
        schedule: ``cosine`` or ``constant``.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay; BatchNorm parameters and biases are excluded.
    """
    if schedule == "cosine":
        rate = WarmupCosine(peak_learning_rate, total_steps, warmup_steps)
    else:
        rate = peak_learning_rate
    decay = weight_decay or None
    if name == "sgd":
        optimizer = keras.optimizers.SGD(rate, momentum=momentum, nesterov=True, weight_decay=decay)
    else:
        optimizer = keras.optimizers.Adam(rate, weight_decay=decay)
    if decay:
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer
