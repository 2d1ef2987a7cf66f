"""The training recipe in Keras 3: tf_keras' schedule, optimizer and loss on any backend.

The same numbers as ``edgesmith.tfkeras.optimizer`` (linear warm-up, then cosine to zero, per
step; SGD with Nesterov momentum; decoupled weight decay that skips BatchNorm and biases; label
smoothing), written with ``keras.ops`` so JAX, PyTorch and TensorFlow compute them alike. Import it
after ``keras3_env.import_keras`` has chosen the backend.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from edgesmith.core.optimizer_plan import OptimizerPlan

NO_DECAY = ["gamma", "beta", "bias"]
"""Variables decoupled weight decay leaves alone: BatchNorm parameters and biases."""


@keras.saving.register_keras_serializable(package="edgesmith")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Rise linearly from 0 to ``peak`` over ``warmup_steps``, then follow a cosine to 0.

    Step ``s`` of warm-up uses ``peak * (s + 1) / warmup_steps``, as the tf_keras schedule does,
    so the first step already moves the weights.
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        self.peak = float(peak)
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, min(int(warmup_steps), self.total_steps - 1))

    def __call__(self, step):
        """The learning rate at an optimizer step (a scalar tensor)."""
        step = ops.cast(step, "float32")
        warm = float(max(1, self.warmup_steps))
        warmup = self.peak * (step + 1.0) / warm
        span = float(max(1, self.total_steps - self.warmup_steps))
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        cosine = 0.5 * self.peak * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warmup, cosine)

    def get_config(self) -> dict:
        """Constructor arguments, for Keras serialisation."""
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def ema_decay(step: Any, ceiling: float) -> Any:
    """The averaging decay at an optimizer step: ``min(ceiling, (1 + step) / (10 + step))``.

    Keras' own ``use_ema`` averages at the full decay from the first step, so for the first
    ~``1 / (1 - decay)`` steps the average is mostly the random initial weights (0.999 over a
    15-epoch CIFAR-10 run at batch 512 evaluated at ~10% while training accuracy was 70%). The
    ramp is ``tf.train.ExponentialMovingAverage``'s ``num_updates`` rule: early steps weigh the
    recent weights, and the full decay applies from step ``(10 * ceiling - 1) / (1 - ceiling)``
    (8,990 for 0.999): the two averages differ only in how they weigh the steps before that,
    whose share of a long run's average is ``ceiling ** (steps - 8990)`` (3e-5 at 19,400 steps).

    Args:
        step: the optimizer step (an int or a scalar tensor).
        ceiling: the decay asked for (``--ema``).
    """
    step = ops.cast(step, "float32")
    return ops.minimum(ceiling, (1.0 + step) / (10.0 + step))


def _with_ema_warmup(base: type) -> type:
    """``base`` (a Keras 3 optimizer class) whose weight average ramps up as :func:`ema_decay`."""

    class WarmedUpAverage(base):
        def _update_model_variables_moving_average(self, trainable_variables):
            if not self.use_ema:
                return
            # the first step copies the weights, as Keras does; then the ramp
            decay = ops.where(
                ops.equal(self.iterations, 0), 0.0, ema_decay(self.iterations, self.ema_momentum)
            )
            averages = self._model_variables_moving_average
            for var, average in zip(trainable_variables, averages, strict=True):
                if average is not None:
                    keep = ops.cast(decay, var.dtype)
                    average.assign(keep * average + (1.0 - keep) * var)

    WarmedUpAverage.__name__ = WarmedUpAverage.__qualname__ = f"{base.__name__}WithAverageWarmup"
    return WarmedUpAverage


def make_optimizer(
    name: str, peak_learning_rate: float, **settings: Any
) -> keras.optimizers.Optimizer:
    """The tf_keras trainer's optimizer in Keras 3, optionally averaging the weights.

    Args:
        name: ``sgd`` (Nesterov momentum) or ``adam``.
        peak_learning_rate: the rate after warm-up (or throughout, for ``constant``).
        **settings: the plan's other settings
            (:class:`~edgesmith.core.optimizer_plan.OptimizerPlan`); ``total_steps`` at least.
            The weight average (``ema``) ramps up as :func:`ema_decay`.
    """
    plan = OptimizerPlan(name, peak_learning_rate, **settings)
    if plan.schedule == "cosine":
        rate = WarmupCosine(plan.peak_learning_rate, plan.total_steps, plan.warmup_steps)
    else:
        rate = plan.peak_learning_rate
    common = {
        "weight_decay": plan.weight_decay or None,
        "use_ema": plan.ema is not None,
        "ema_momentum": 0.99 if plan.ema is None else float(plan.ema),
    }
    base = keras.optimizers.SGD if plan.name == "sgd" else keras.optimizers.Adam
    if plan.ema is not None:
        # the backend's own class (on torch, SGD(...) builds a TorchSGD with a fused update)
        base = _with_ema_warmup(type(base(0.0)))
    if plan.name == "sgd":
        optimizer = base(rate, momentum=plan.momentum, nesterov=True, **common)
    else:
        optimizer = base(rate, **common)
    if plan.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer


def make_loss(*, from_logits: bool, label_smoothing: float) -> keras.losses.Loss:
    """Cross-entropy on one-hot labels, smoothed as the tf_keras trainer smooths them."""
    return keras.losses.CategoricalCrossentropy(
        from_logits=from_logits, label_smoothing=label_smoothing
    )


def distillation_loss(student, teacher, *, temperature: float, from_logits: tuple[bool, bool]):
    """``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, averaged over the batch.

    Probabilities are turned into logits by their logarithm (a softmax of ``log p`` is ``p``), so
    zoo models, which end in softmax, and logit models distil alike. ``from_logits`` says which
    each of (student, teacher) gives.
    """
    logits = []
    for outputs, is_logits in zip((student, teacher), from_logits, strict=True):
        outputs = ops.cast(outputs, "float32")
        logits.append(outputs if is_logits else ops.log(ops.clip(outputs, 1e-7, 1.0)))
    log_student = ops.log_softmax(logits[0] / temperature, axis=-1)
    log_teacher = ops.log_softmax(logits[1] / temperature, axis=-1)
    kl = ops.sum(ops.exp(log_teacher) * (log_teacher - log_student), axis=-1)
    return temperature * temperature * ops.mean(kl)
