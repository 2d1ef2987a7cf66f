"""The Keras 3 trainer's progress line per epoch and its resumable history (``history.json``).

The records have the tf_keras trainer's fields (``train/callbacks.py``), so reports, plots and
``bench/train_cifar10.py`` read both alike. ``elapsed_wall_seconds`` counts from the start of
``fit``, so the first epoch's compilation is included.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
from keras import ops

from edgesmith.progress import Reporter


class EpochHistory(keras.callbacks.Callback):
    """Print one line per epoch and keep a history that survives ``--resume``."""

    def __init__(self, *, epochs: int, num_train: int, history_path: Path, report: Reporter):
        super().__init__()
        self.epochs = epochs
        self.num_train = num_train
        self.history_path = history_path
        self.report = report
        self.history: list[dict] = []
        if history_path.is_file():
            self.history = json.loads(history_path.read_text())
        self._epoch_start = 0.0
        self._train_seconds = 0.0
        self._fit_start = 0.0
        self._wall_before = 0.0

    def on_train_begin(self, logs=None):
        """Start the wall clock (continuing a resumed run's total)."""
        self._fit_start = time.perf_counter()
        self._wall_before = self.history[-1]["elapsed_wall_seconds"] if self.history else 0.0

    def on_epoch_begin(self, epoch, logs=None):
        """Start the epoch's clock; on resume, drop records of epochs that will run again."""
        self.history = [h for h in self.history if h["epoch"] <= epoch]
        self._epoch_start = time.perf_counter()
        self._train_seconds = 0.0

    def on_test_begin(self, logs=None):
        """Stop the training clock where evaluation starts."""
        if not self._train_seconds:
            self._train_seconds = time.perf_counter() - self._epoch_start

    def on_epoch_end(self, epoch, logs=None):
        """Record the epoch, persist the history and print the line."""
        logs = logs or {}
        total = time.perf_counter() - self._epoch_start
        train_seconds = self._train_seconds or total
        elapsed = self.history[-1]["elapsed_train_seconds"] if self.history else 0.0
        record = {
            "epoch": epoch + 1,
            "loss": float(logs.get("loss", float("nan"))),
            "train_accuracy": float(logs.get("accuracy", float("nan"))),
            "eval_loss": float(logs.get("val_loss", float("nan"))),
            "eval_accuracy": float(logs.get("val_accuracy", float("nan"))),
            "learning_rate": float(ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "train_seconds": round(train_seconds, 3),
            "epoch_seconds": round(total, 3),
            "elapsed_train_seconds": round(elapsed + train_seconds, 3),
            "elapsed_wall_seconds": round(
                self._wall_before + time.perf_counter() - self._fit_start, 3
            ),
            "images_per_second": round(self.num_train / train_seconds, 1),
        }
        self.history.append(record)
        self.history_path.write_text(json.dumps(self.history, indent=1))
        self.report(
            f"epoch {epoch + 1:>3}/{self.epochs}  loss {record['loss']:.4f}  "
            f"acc {record['train_accuracy']:.4f}  eval_acc {record['eval_accuracy']:.4f}  "
            f"lr {record['learning_rate']:.4g}  {total:.1f}s  "
            f"{record['images_per_second']:.0f} img/s"
        )
