"""tf.data input pipelines: shuffle, batch, augment (on the host or not), prefetch (to a device).

Augmentation runs on batches (one gather per batch for the random crops) rather than per image,
which keeps a 2-core machine's input pipeline well ahead of the model. With
``augment_on="device"`` the pipeline only shuffles and batches raw pixels; ``DeviceAugmenter``
(train/augment.py) normalises and augments them inside the training step, on the GPU when there
is one.

No ``cache()``: the arrays are already in memory (``from_tensor_slices``) and nothing is computed
per image before the shuffle, so a cache would only hold a second copy of the data.
"""

from __future__ import annotations

import numpy as np

from edgesmith.core.normalization import Normalization
from edgesmith.tfkeras import DEVICE_BUFFER
from edgesmith.tfkeras.augment import augment_batch, crop_padding, generator_draw, normalizer
from edgesmith.tfkeras.backend import tf

AUTOTUNE = tf.data.AUTOTUNE
AUGMENT_PLACES = ("host", "device")

__all__ = ["AUTOTUNE", "crop_padding", "eval_dataset", "to_device", "train_dataset"]


def to_device(ds: tf.data.Dataset, device: str | None) -> tf.data.Dataset:
    """Copy batches to ``device`` ahead of the step that uses them (None: leave them on the host).

    ``prefetch_to_device`` must be the pipeline's last transformation; the dataset's cardinality
    becomes unknown, so ``fit`` must not be given ``steps_per_epoch`` for it.
    """
    if device is None:
        return ds
    return ds.apply(tf.data.experimental.prefetch_to_device(device, DEVICE_BUFFER))


def train_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int,
    norm: Normalization,
    batch_size: int,
    augment: tuple[str, ...],
    seed: int,
    augment_on: str = "host",
    prefetch_device: str | None = None,
) -> tf.data.Dataset:
    """Shuffled, one-hot batches for ``fit``: normalised and augmented, or raw for the device.

    Args:
        x: raw pixels (N, H, W, C).
        y: class indices (N,).
        num_classes: width of the one-hot labels (label smoothing needs one-hot).
        norm: the input normalisation.
        batch_size: images per batch.
        augment: any of ``crop``, ``flip``.
        seed: seeds the shuffle and the augmentation.
        augment_on: ``host`` (normalise and augment here, in tf.data) or ``device`` (yield raw
            pixels in their own dtype; the training step normalises and augments them).
        prefetch_device: copy batches to this device ahead of time (a single GPU under the
            default strategy); None keeps them on the host.

    Raises:
        ValueError: for an ``augment_on`` other than ``host`` or ``device``.
    """
    if augment_on not in AUGMENT_PLACES:
        raise ValueError(f"augment_on must be host or device. Received: {augment_on!r}")
    normalize = normalizer(norm)
    pad = crop_padding(x.shape[1:])
    seed_gen = tf.random.Generator.from_seed(seed)
    draw = generator_draw(seed_gen)

    def prepare(images, labels):
        images = augment_batch(normalize(images), augment, pad, draw)
        return images, tf.one_hot(labels, num_classes)

    def raw(images, labels):
        return images, tf.one_hot(labels, num_classes)

    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(prepare if augment_on == "host" else raw, num_parallel_calls=1)
    return to_device(ds.prefetch(AUTOTUNE), prefetch_device)


def eval_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int,
    norm: Normalization,
    batch_size: int = 512,
    prefetch_device: str | None = None,
) -> tf.data.Dataset:
    """Normalised, one-hot eval batches in order (no augmentation), optionally on a device."""
    normalize = normalizer(norm)
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32))).batch(batch_size)
    ds = ds.map(
        lambda i, t: (normalize(i), tf.one_hot(t, num_classes)), num_parallel_calls=AUTOTUNE
    )
    return to_device(ds.prefetch(AUTOTUNE), prefetch_device)
