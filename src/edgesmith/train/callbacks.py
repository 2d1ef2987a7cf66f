"""The tf_keras trainer's callback: one progress line per epoch and a resumable history."""

from __future__ import annotations

from edgesmith.tfkeras.backend import keras
from edgesmith.train.epoch_log import EpochLog


class EpochReporter(EpochLog, keras.callbacks.Callback):
    """:class:`EpochLog` on tf_keras."""

    def learning_rate(self) -> float:
        """The schedule's value at the optimizer's step (or the constant rate)."""
        optimizer = self.model.optimizer
        rate = optimizer.learning_rate
        value = rate(optimizer.iterations) if callable(rate) else rate
        return float(keras.backend.get_value(value))
