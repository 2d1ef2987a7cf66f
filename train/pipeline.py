"""tf.data input pipelines: shuffle, in-graph augmentation on whole batches, normalise, prefetch.

Augmentation runs on batches (one gather per batch for the random crops) rather than per image,
which keeps a 2-core machine's input pipeline well ahead of the model.
"""

from __future__ import annotations

import numpy as np

from edgesmith._tensorflow import tf
from edgesmith.normalization import Normalization

AUTOTUNE = tf.data.AUTOTUNE


def crop_padding(input_shape: tuple[int, int, int]) -> int:
    """Padding for random-crop augmentation: 4 px at 32x32 (the CIFAR standard), 1 px at 8x8."""
    return max(1, round(min(input_shape[:2]) / 8))


def _normalize_fn(norm: Normalization):
    scale = tf.constant(norm.scale, tf.float32)
    mean = tf.constant(norm.mean, tf.float32)
    std = tf.constant(norm.std, tf.float32)

    def normalize(pixels):
        return (tf.cast(pixels, tf.float32) * scale - mean) / std

    return normalize


def _random_crop_batch(images, pad: int, seed_gen: tf.random.Generator):
    """Shift every image in a batch by its own random offset of up to ``pad`` pixels."""
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    dy = seed_gen.uniform([batch], 0, 2 * pad + 1, dtype=tf.int32)
    dx = seed_gen.uniform([batch], 0, 2 * pad + 1, dtype=tf.int32)
    rows = dy[:, None] + tf.range(height)[None, :]
    cols = dx[:, None] + tf.range(width)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def _random_flip_batch(images, seed_gen: tf.random.Generator):
    batch = tf.shape(images)[0]
    flip = seed_gen.uniform([batch], 0, 2, dtype=tf.int32) > 0
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def train_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int,
    norm: Normalization,
    batch_size: int,
    augment: tuple[str, ...],
    seed: int,
) -> tf.data.Dataset:
    """Shuffled, augmented, normalised, one-hot batches for ``fit``.

    Args:
        x: raw pixels (N, H, W, C).
        y: class indices (N,).
        num_classes: width of the one-hot labels (label smoothing needs one-hot).
        norm: the input normalisation.
        batch_size: images per batch.
        augment: any of ``crop``, ``flip``.
        seed: seeds the shuffle and the augmentation.
    """
    normalize = _normalize_fn(norm)
    pad = crop_padding(x.shape[1:])
    seed_gen = tf.random.Generator.from_seed(seed)

    def prepare(images, labels):
        images = normalize(images)
        if "crop" in augment:
            images = _random_crop_batch(images, pad, seed_gen)
        if "flip" in augment:
            images = _random_flip_batch(images, seed_gen)
        return images, tf.one_hot(labels, num_classes)

    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(prepare, num_parallel_calls=1)
    return ds.prefetch(AUTOTUNE)


def eval_dataset(
    x: np.ndarray, y: np.ndarray, *, num_classes: int, norm: Normalization, batch_size: int = 512
) -> tf.data.Dataset:
    """Normalised, one-hot eval batches in order (no augmentation)."""
    normalize = _normalize_fn(norm)
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32))).batch(batch_size)
    ds = ds.map(
        lambda i, t: (normalize(i), tf.one_hot(t, num_classes)), num_parallel_calls=AUTOTUNE
    )
    return ds.prefetch(AUTOTUNE)
