"""The Keras 3 trainer's progress line per epoch and its resumable history (``history.json``).

The records have the tf_keras trainer's fields (``train/callbacks.py``), so reports, plots and
``bench/train_cifar10.py`` read both alike. ``elapsed_wall_seconds`` counts from the start of
``fit``, so the first epoch's compilation is included.
"""

from __future__ import annotations

import keras
from keras import ops

from edgesmith.train.epoch_log import EpochLog


class EpochHistory(EpochLog, keras.callbacks.Callback):
    """:class:`EpochLog` on Keras 3 (any backend)."""

    def learning_rate(self) -> float:
        """The optimizer's current learning rate (Keras 3 evaluates its schedule itself)."""
        return float(ops.convert_to_numpy(self.model.optimizer.learning_rate))
