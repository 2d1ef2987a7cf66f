"""The per-epoch progress line and resumable history shared by both trainers.

tf_keras and Keras 3 have different ``Callback`` base classes, so each trainer's callback is a
thin subclass of its own base and of :class:`EpochLog`, which holds what they share: the clocks
(training apart from evaluation, so images/s measures training alone; the wall clock since
``fit`` began, compilation and stalls included), the record's fields (reports, plots and
``bench/train_cifar10.py`` read both trainers' histories alike) and ``history.json``, which a
resumed run continues.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from edgesmith.core.progress import Reporter


class EpochLog:
    """Print one line per epoch and keep a history that survives ``--resume``.

    Subclasses also derive from a Keras ``Callback`` (which supplies ``self.model``) and say how
    to read the optimizer's current learning rate.
    """

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

    def learning_rate(self) -> float:
        """The optimizer's learning rate now (each Keras reads it its own way)."""
        raise NotImplementedError

    def on_train_begin(self, logs=None):
        """Start the wall clock (continuing a resumed run's total)."""
        self._fit_start = time.perf_counter()
        self._wall_before = (
            self.history[-1].get("elapsed_wall_seconds", 0.0) if self.history else 0.0
        )

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
            "learning_rate": self.learning_rate(),
            "train_seconds": round(train_seconds, 3),
            "epoch_seconds": round(total, 3),
            "elapsed_train_seconds": round(elapsed + train_seconds, 3),
            # wall clock since fit began: includes Keras' work between epochs and any stalls
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
