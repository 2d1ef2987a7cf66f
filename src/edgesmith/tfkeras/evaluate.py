"""Accuracy of a Keras model on a dataset's eval split, preprocessing as the manifest records."""

from __future__ import annotations

import numpy as np

from edgesmith.core.accuracy import accuracy_metrics
from edgesmith.core.datasets import Dataset
from edgesmith.core.normalization import Normalization
from edgesmith.tfkeras.backend import keras


def predict(
    model: keras.Model, pixels: np.ndarray, norm: Normalization, batch_size: int = 512
) -> np.ndarray:
    """Model outputs for raw pixels, normalised on the fly in batches."""
    outputs = []
    for start in range(0, len(pixels), batch_size):
        batch = norm.apply(pixels[start : start + batch_size])
        outputs.append(np.asarray(model(batch, training=False)))
    return np.concatenate(outputs)


def eval_metrics(model: keras.Model, dataset: Dataset, norm: Normalization) -> dict:
    """Top-1 accuracy and its count on the eval split, plus per-class accuracy."""
    return accuracy_metrics(predict(model, dataset.x_eval, norm), dataset)
