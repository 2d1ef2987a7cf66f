"""Learning-rate schedules, per step: linear warm-up then cosine decay to zero, or constant."""

from __future__ import annotations

import math

from edgesmith._tensorflow import keras, tf


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
