"""Datasets from spec strings (``digits``, ``cifar10``, ``npz:PATH``, ...) as raw-pixel arrays."""

from __future__ import annotations

import dataclasses

from edgesmith.core.datasets.dataset import Dataset, make_dataset
from edgesmith.core.datasets.loaders import LOADERS
from edgesmith.core.datasets.spec import SPEC_HELP, DataSpec, parse_spec

__all__ = ["SPEC_HELP", "DataSpec", "Dataset", "load_dataset", "make_dataset", "parse_spec"]


def load_dataset(spec: str) -> Dataset:
    """Load the dataset a spec names, applying ``?train=N&eval=M`` limits.

    Args:
        spec: for example ``digits``, ``cifar10?train=5000``, ``npz:data.npz``.

    Returns:
        The validated dataset with train and eval splits.

    Raises:
        EdgesmithError: for an unknown spec, missing or malformed data.
    """
    parsed = parse_spec(spec)
    dataset = LOADERS[parsed.kind](parsed)
    n_train = parsed.int_option("train")
    n_eval = parsed.int_option("eval")
    if n_train is None and n_eval is None:
        return dataset
    return dataclasses.replace(
        dataset,
        x_train=dataset.x_train[:n_train],
        y_train=dataset.y_train[:n_train],
        x_eval=dataset.x_eval[:n_eval],
        y_eval=dataset.y_eval[:n_eval],
    )
