"""What a trained model takes: its normalisation from ``--normalization`` and the manifest record.

Framework-free, so the tf_keras trainer, the Keras 3 trainer and ``import`` share one definition.
"""

from __future__ import annotations

from edgesmith.core.datasets import Dataset
from edgesmith.core.manifest import InputRecord
from edgesmith.core.normalization import Normalization, parse_normalization


def resolve_normalization(text: str, dataset: Dataset) -> Normalization:
    """Parse ``--normalization`` against a dataset (``standard`` takes its mean and std)."""
    mean = std = None
    if text == "standard":
        mean, std = dataset.channel_stats()
    norm = parse_normalization(text, mean=mean, std=std)
    norm.check_channels(dataset.input_shape[-1])
    return norm


def input_record(dataset: Dataset, norm: Normalization) -> InputRecord:
    """The manifest's ``input`` record for a float Keras model."""
    return InputRecord(
        shape=tuple(dataset.input_shape),
        layout="NHWC",
        dtype="float32",
        normalization=norm,
        quantization=None,
    )
