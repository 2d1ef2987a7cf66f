"""The in-memory dataset every stage works from: raw pixels, integer labels, class names."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any

import numpy as np

from edgesmith.core.errors import EdgesmithError

MAX_CLASSES = 100_000
"""Most classes a dataset may have: a stray label such as 2**40 must not build a huge list."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Train and eval splits as raw pixels in [0, 255], shaped (N, H, W, C).

    Attributes:
        spec: the spec string it was loaded from (recorded in manifests).
        x_train: uint8 or float32 pixels, (N, H, W, C).
        y_train: int64 class indices, (N,).
        x_eval: eval pixels, same layout.
        y_eval: eval class indices.
        labels: class names in index order.
        flip_ok: whether a horizontal flip keeps the class (true for photos, false for digits).
    """

    spec: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    labels: tuple[str, ...]
    flip_ok: bool = False

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        """Number of classes (length of :attr:`labels`)."""
        return len(self.labels)

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 over the arrays (shape, dtype and bytes) and the class names."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_eval, self.y_eval):
            digest.update(f"{array.shape}{array.dtype.str}".encode())
            digest.update(np.ascontiguousarray(array).data)
        digest.update("\0".join(self.labels).encode())
        return digest.hexdigest()

    def channel_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std of the training pixels scaled to [0, 1]."""
        channels = self.x_train.shape[-1]
        total = np.zeros(channels)
        total_sq = np.zeros(channels)
        count = 0
        for start in range(0, len(self.x_train), 4096):
            chunk = self.x_train[start : start + 4096].reshape(-1, channels) / 255.0
            total += chunk.sum(axis=0)
            total_sq += (chunk**2).sum(axis=0)
            count += len(chunk)
        mean = total / count
        return mean, np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))

    def describe(self) -> dict[str, Any]:
        """The manifest's ``dataset`` record."""
        return {
            "spec": self.spec,
            "fingerprint": self.fingerprint,
            "num_train": int(len(self.y_train)),
            "num_eval": int(len(self.y_eval)),
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
        }


def as_pixels(images: Any, *, where: str) -> np.ndarray:
    """Bring images to (N, H, W, C) raw pixels: uint8 kept, floats mapped to [0, 255].

    Floats whose maximum is at most 1 are taken as p / 255 and scaled back to pixels.

    Raises:
        EdgesmithError: for a wrong rank, a non-numeric dtype or values outside the pixel range.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        raise EdgesmithError(
            f"{where}: expected images shaped (N, H, W) or (N, H, W, C). Received: {images.shape}"
        )
    if images.shape[-1] not in (1, 2, 3, 4):
        raise EdgesmithError(
            f"{where}: expected 1 to 4 channels last (N, H, W, C). Received: {images.shape}"
        )
    if images.dtype == np.uint8:
        return images
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise EdgesmithError(f"{where}: expected numeric pixels. Received dtype {images.dtype}")
    if images.size == 0:
        raise EdgesmithError(f"{where}: holds no images")
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        raise EdgesmithError(
            f"{where}: pixel values include NaN or infinity; expected finite raw pixels"
        )
    low, high = float(images.min()), float(images.max())
    if np.issubdtype(images.dtype, np.floating) and high <= 1.0 and low >= 0.0:
        return (images.astype(np.float32) * 255.0).astype(np.float32)
    if low < 0 or high > 255:
        raise EdgesmithError(
            f"{where}: pixel values span [{low:g}, {high:g}]; expected raw pixels in [0, 255] "
            "(uint8) or [0, 1] (float). Give the data before normalisation."
        )
    if np.issubdtype(images.dtype, np.integer):
        return images.astype(np.uint8)
    return images.astype(np.float32)


def as_labels(labels: Any, count: int, *, where: str) -> np.ndarray:
    """Bring labels to int64 (N,), accepting (N, 1) and one-hot (N, K).

    Raises:
        EdgesmithError: for a length that does not match the images or non-integer labels.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    elif labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    if labels.ndim != 1:
        raise EdgesmithError(f"{where}: expected labels shaped (N,). Received: {labels.shape}")
    if len(labels) != count:
        raise EdgesmithError(f"{where}: {len(labels)} labels for {count} images")
    if np.issubdtype(labels.dtype, np.floating) and not np.all(labels == np.round(labels)):
        raise EdgesmithError(f"{where}: labels must be whole class indices")
    if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        raise EdgesmithError(
            f"{where}: labels must be class indices. Received dtype {labels.dtype}"
        )
    if count and labels.min() < 0:
        raise EdgesmithError(f"{where}: labels must be >= 0. Received: {labels.min()}")
    if count and labels.max() >= MAX_CLASSES:  # checked before the cast: 2**70 must not wrap
        raise EdgesmithError(
            f"{where}: label {labels.max()} is out of range; class indices go up to "
            f"{MAX_CLASSES - 1:,}"
        )
    return labels.astype(np.int64)


def make_dataset(
    spec: str,
    x_train: Any,
    y_train: Any,
    x_eval: Any,
    y_eval: Any,
    labels: list[str] | None = None,
    *,
    flip_ok: bool = False,
    where: str | None = None,
) -> Dataset:
    """Validate arrays from any source and assemble a :class:`Dataset`.

    Raises:
        EdgesmithError: when the splits disagree in image shape, labels fall outside the class
            names, or a split is empty.
    """
    where = where or spec
    x_train = as_pixels(x_train, where=f"{where} x_train")
    x_eval = as_pixels(x_eval, where=f"{where} x_test")
    y_train = as_labels(y_train, len(x_train), where=f"{where} y_train")
    y_eval = as_labels(y_eval, len(x_eval), where=f"{where} y_test")
    if len(x_train) == 0 or len(x_eval) == 0:
        raise EdgesmithError(f"{where}: the train and eval splits both need images")
    if x_train.shape[1:] != x_eval.shape[1:]:
        raise EdgesmithError(
            f"{where}: train images are {x_train.shape[1:]} but eval images are {x_eval.shape[1:]}"
        )
    top = int(max(y_train.max(), y_eval.max()))
    if labels is None:
        labels = [str(i) for i in range(top + 1)]
    labels = [str(name) for name in labels]
    if top >= len(labels):
        raise EdgesmithError(
            f"{where}: label {top} found but only {len(labels)} class names are given"
        )
    if len(labels) < 2:
        raise EdgesmithError(f"{where}: a classifier needs at least 2 classes. Received: {labels}")
    return Dataset(spec, x_train, y_train, x_eval, y_eval, tuple(labels), flip_ok)


def stratified_split(labels: np.ndarray, eval_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Indices of a seeded split that keeps each class's share in both parts."""
    rng = np.random.default_rng(seed)
    train_idx, eval_idx = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_eval = max(1, int(round(len(idx) * eval_fraction))) if len(idx) > 1 else 0
        eval_idx.append(idx[:n_eval])
        train_idx.append(idx[n_eval:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(eval_idx))
