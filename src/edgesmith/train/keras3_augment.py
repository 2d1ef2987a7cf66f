"""Crop, flip and random erasing of image batches with ``keras.ops``, inside the compiled step.

The tf_keras trainer's augmentation (``edgesmith.tfkeras.augment``), written for Keras 3 so that it
runs on the accelerator of any backend: every image gets its own shift inside a zero-padded frame
(Keras' ``RandomCrop`` draws one offset per batch), a left-right flip with probability 1/2, and with
``erase`` a square of half the image side set to zero (the mean after ``standard``
normalisation) with probability 1/2 (cutout / random erasing). Images arrive normalised, so the
padding and the erased square are zeros as in the CIFAR recipe.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

ERASE_PROBABILITY = 0.5


def crop_padding(input_shape: Sequence[int]) -> int:
    """Padding for random-crop augmentation: 4 px at 32x32 (the CIFAR standard), 1 px at 8x8."""
    return max(1, round(min(input_shape[:2]) / 8))


def random_crop(images, pad: int, seed):
    """Shift every image of a batch by its own random offset of up to ``pad`` pixels."""
    batch, height, width, channels = ops.shape(images)
    padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    dy = keras.random.randint((batch,), 0, 2 * pad + 1, seed=seed)
    dx = keras.random.randint((batch,), 0, 2 * pad + 1, seed=seed)
    rows = dy[:, None] + ops.arange(height, dtype="int32")[None, :]
    cols = dx[:, None] + ops.arange(width, dtype="int32")[None, :]
    rows = ops.broadcast_to(rows[:, :, None, None], (batch, height, width + 2 * pad, channels))
    out = ops.take_along_axis(padded, rows, axis=1)
    cols = ops.broadcast_to(cols[:, None, :, None], (batch, height, width, channels))
    return ops.take_along_axis(out, cols, axis=2)


def random_flip(images, seed):
    """Mirror each image left-right with probability 1/2."""
    flip = keras.random.randint((ops.shape(images)[0],), 0, 2, seed=seed) > 0
    return ops.where(flip[:, None, None, None], ops.flip(images, axis=2), images)


def random_erase(images, seed, probability: float = ERASE_PROBABILITY):
    """Zero a square of half the image side at a random centre (clipped at the border).

    Each image is erased with ``probability``; the centre may lie anywhere in the image, so
    squares near a border are partly outside it (DeVries & Taylor's cutout).
    """
    batch, height, width, _ = ops.shape(images)
    size = max(1, min(height, width) // 2)
    cy = keras.random.randint((batch,), 0, height, seed=seed)
    cx = keras.random.randint((batch,), 0, width, seed=seed)
    on = keras.random.uniform((batch,), seed=seed) < probability
    top, left = cy - size // 2, cx - size // 2
    rows = ops.arange(height, dtype="int32")[None, :]
    cols = ops.arange(width, dtype="int32")[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + size)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & on[:, None, None]
    return ops.where(mask[..., None], ops.zeros_like(images), images)


def augment_batch(images, augment: Sequence[str], pad: int, seed):
    """Apply ``crop``, then ``flip``, then ``erase`` (whichever are listed) to a batch."""
    if "crop" in augment:
        images = random_crop(images, pad, seed)
    if "flip" in augment:
        images = random_flip(images, seed)
    if "erase" in augment:
        images = random_erase(images, seed)
    return images
