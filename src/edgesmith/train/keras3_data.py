"""Batches for the Keras 3 trainer: raw uint8 pixels and one-hot labels, equal-sized steps.

The host only slices arrays; normalisation and augmentation run in the compiled step
(``keras3_wrapper.Trainee``). Every training batch has the same size (the remainder of a
shuffled epoch is dropped, as tf.data's ``drop_remainder`` would), so JAX and XLA compile the step
once, and data parallelism splits every batch evenly. The order of each epoch follows from the
seed and the epoch number, so a resumed run draws the epochs it has left as an uninterrupted one.
"""

from __future__ import annotations

import keras
import numpy as np


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels as float32 one-hot rows (label smoothing needs them)."""
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


class ShuffledBatches(keras.utils.PyDataset):
    """Seeded, per-epoch shuffled, full batches of ``(pixels, one_hot_labels)``."""

    def __init__(
        self,
        pixels: np.ndarray,
        labels: np.ndarray,
        *,
        num_classes: int,
        batch_size: int,
        seed: int,
        first_epoch: int = 0,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.pixels = pixels
        self.labels = one_hot(labels, num_classes)
        self.batch_size = min(int(batch_size), len(pixels))
        self.seed = int(seed)
        self.epoch = int(first_epoch)
        self.order = self._order()

    def _order(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.pixels))

    def __len__(self) -> int:
        return len(self.pixels) // self.batch_size

    def __getitem__(self, index: int):
        take = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        return self.pixels[take], self.labels[take]

    def on_epoch_end(self) -> None:
        """Draw the next epoch's order."""
        self.epoch += 1
        self.order = self._order()


def eval_batch_size(count: int, limit: int, multiple: int = 1) -> int:
    """The largest batch <= ``limit`` that divides ``count`` (one compiled eval step).

    Only multiples of ``multiple`` (the number of GPUs) are considered; where none divides
    ``count``, ``limit`` itself (the last batch then compiles a second step).
    """
    for size in range(min(limit, count), 0, -1):
        if count % size == 0 and size % multiple == 0 and size >= min(limit, count) // 4:
            return size
    return limit
