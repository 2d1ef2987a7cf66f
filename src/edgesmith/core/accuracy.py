"""The eval accuracy a stage records for a Keras model: top-1, its image count, per class.

The tf_keras and Keras 3 code paths run the model their own way; the record they write into the
manifest's ``metrics`` is the same, computed here from the model's outputs.
"""

from __future__ import annotations

import numpy as np

from edgesmith.core.datasets import Dataset


def accuracy_metrics(outputs: np.ndarray, dataset: Dataset) -> dict:
    """``accuracy``, ``num_eval`` and ``per_class_accuracy`` of outputs for the eval split.

    Args:
        outputs: the model's (N, K) outputs for ``dataset.x_eval``, in order.
        dataset: the data (a class without eval images has no per-class entry).
    """
    correct = outputs.argmax(axis=-1) == dataset.y_eval
    per_class = {
        label: round(float(correct[dataset.y_eval == index].mean()), 6)
        for index, label in enumerate(dataset.labels)
        if np.any(dataset.y_eval == index)
    }
    return {
        "accuracy": round(float(correct.mean()), 6),
        "num_eval": int(len(correct)),
        "per_class_accuracy": per_class,
    }
