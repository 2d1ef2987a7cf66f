"""Batch augmentation shared by the host tf.data pipeline and the accelerator's training step.

One implementation (normalise, then shift inside a zero-padded frame, then flip left-right) serves
both placements, so ``augment_on="host"`` and ``augment_on="device"`` train on the same
distribution of images. Only the source of random numbers differs: a seeded
``tf.random.Generator`` inside tf.data on the host; stateless seeds derived from the optimizer step
and the replica inside the training step, which stay reproducible under XLA and tf.distribute and
continue where they were after a resume.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from edgesmith.core.normalization import Normalization
from edgesmith.tfkeras.backend import keras, tf

# draw(shape, maxval) -> int32 tensor of that shape, uniform in [0, maxval)
Draw = Callable[[tf.Tensor, int], tf.Tensor]


def crop_padding(input_shape: Sequence[int]) -> int:
    """Padding for random-crop augmentation: 4 px at 32x32 (the CIFAR standard), 1 px at 8x8."""
    return max(1, round(min(input_shape[:2]) / 8))


def normalizer(norm: Normalization) -> Callable[[tf.Tensor], tf.Tensor]:
    """A function mapping raw pixels (any dtype) to the float32 inputs the model expects."""
    scale = tf.constant(norm.scale, tf.float32)
    mean = tf.constant(norm.mean, tf.float32)
    std = tf.constant(norm.std, tf.float32)

    def normalize(pixels: tf.Tensor) -> tf.Tensor:
        return (tf.cast(pixels, tf.float32) * scale - mean) / std

    return normalize


def random_crop(images: tf.Tensor, pad: int, draw: Draw) -> tf.Tensor:
    """Shift every image in a batch by its own random offset of up to ``pad`` pixels.

    The frame is padded with zeros *after* normalisation (the mean pixel for ``standard``,
    black for ``unit``), as the CIFAR recipe does; one gather per axis serves the whole batch.
    """
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    dy = draw([batch], 2 * pad + 1)
    dx = draw([batch], 2 * pad + 1)
    rows = dy[:, None] + tf.range(height)[None, :]
    cols = dx[:, None] + tf.range(width)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def random_flip(images: tf.Tensor, draw: Draw) -> tf.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = draw([tf.shape(images)[0]], 2) > 0
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def augment_batch(images: tf.Tensor, augment: Sequence[str], pad: int, draw: Draw) -> tf.Tensor:
    """Apply ``crop`` then ``flip`` (whichever are listed) to a batch of normalised images."""
    if "crop" in augment:
        images = random_crop(images, pad, draw)
    if "flip" in augment:
        images = random_flip(images, draw)
    return images


def generator_draw(generator: tf.random.Generator) -> Draw:
    """Draws from a stateful generator (the host pipeline's source of randomness)."""

    def draw(shape, maxval: int) -> tf.Tensor:
        return generator.uniform(shape, 0, maxval, dtype=tf.int32)

    return draw


def stateless_draw(key: tf.Tensor) -> Draw:
    """Draws from a stateless key: the i-th call of one batch uses ``fold_in(key, i)``."""
    calls = [0]

    def draw(shape, maxval: int) -> tf.Tensor:
        sub = tf.random.experimental.stateless_fold_in(key, calls[0])
        calls[0] += 1
        return tf.random.stateless_uniform(shape, sub, 0, maxval, dtype=tf.int32)

    return draw


class DeviceAugmenter(keras.Model):
    """Train a model on raw pixel batches, normalising and augmenting them inside the train step.

    With ``augment_on="device"`` tf.data hands over raw (usually uint8) batches, a quarter of the
    bytes of float32 ones, and this wrapper's ``train_step`` normalises, crops and flips them on
    the device that runs the step (the GPU when training on one; each replica its own share under
    tf.distribute). Evaluation (``test_step``) is unchanged: it takes batches already normalised
    by the host pipeline, unaugmented.

    Only the wrapped ``model`` is saved: the artifact holds no augmentation layers and is the
    same model the host placement produces. Compile and fit this wrapper; save ``inner``.
    Build it under the same global dtype policy as the model so that ``compile`` adds loss
    scaling for ``mixed_float16``.

    Random numbers come from ``(seed, optimizer step)`` folded with the replica's index: two
    replicas never share a crop, the same seed repeats a run, and a resumed run continues the
    sequence from its restored step.
    """

    def __init__(
        self,
        model: keras.Model,
        *,
        norm: Normalization,
        augment: Sequence[str],
        pad: int,
        seed: int,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.inner = model
        self.augment = tuple(augment)
        self.pad = int(pad)
        self.seed = int(seed)
        self._normalize = normalizer(norm)

    def call(self, inputs, training=None):
        """The wrapped model on normalised inputs."""
        return self.inner(inputs, training=training)

    def prepare(self, pixels: tf.Tensor) -> tf.Tensor:
        """Normalise and augment one (per-replica) batch of raw pixels."""
        key = tf.stack(
            [tf.constant(self.seed, tf.int64), tf.cast(self.optimizer.iterations, tf.int64)]
        )
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        key = tf.random.experimental.stateless_fold_in(key, replica)
        images = self._normalize(pixels)
        return augment_batch(images, self.augment, self.pad, stateless_draw(key))

    def train_step(self, data):
        """Keras' own train step on the batch after :meth:`prepare`."""
        pixels, labels, weights = keras.utils.unpack_x_y_sample_weight(data)
        prepared = keras.utils.pack_x_y_sample_weight(self.prepare(pixels), labels, weights)
        return super().train_step(prepared)
