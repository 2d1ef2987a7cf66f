"""The model Keras 3 fits: raw pixels in, normalised and augmented inside the compiled step.

``Trainee`` wraps the model being trained so that uint8 batches (a quarter of float32's bytes)
travel to the accelerator and everything else happens there: normalisation, augmentation and, when
a teacher is given, the frozen teacher's forward pass on the same augmented images for
distillation. Only ``trainee.inner`` is saved; the artifact holds no augmentation layer.
Evaluation (``training=False``) normalises and runs the inner model alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from edgesmith.core.normalization import Normalization
from edgesmith.train.keras3_augment import augment_batch
from edgesmith.train.keras3_recipe import distillation_loss


class Trainee(keras.Model):
    """Normalise -> augment -> model, plus optional distillation from a frozen teacher.

    The distillation loss is ``alpha * CE(labels, student) + (1 - alpha) * T^2 *
    KL(teacher_T || student_T)`` (the compress stage's convention), computed in a backend-agnostic
    ``compute_loss``; metrics see the student's outputs only.
    """

    def __init__(
        self,
        model: keras.Model,
        *,
        norm: Normalization,
        augment: Sequence[str],
        pad: int,
        seed: int,
        model_logits: bool = False,
        teacher: keras.Model | None = None,
        teacher_logits: bool = False,
        alpha: float = 0.5,
        temperature: float = 4.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.inner = model
        self.augment = tuple(augment)
        self.pad = int(pad)
        self.scale = float(norm.scale)
        self.mean = [float(v) for v in norm.mean]
        self.std = [float(v) for v in norm.std]
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.model_logits = bool(model_logits)
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
        self.teacher_logits = bool(teacher_logits)
        self.alpha = float(alpha)
        self.temperature = float(temperature)

    def normalize(self, pixels):
        """Raw pixels (any dtype) to the float32 inputs the model expects."""
        x = ops.cast(pixels, "float32") * self.scale
        return (x - ops.array(self.mean, "float32")) / ops.array(self.std, "float32")

    def call(self, pixels, training=False):
        """Student outputs; while training with a teacher, (student, teacher) outputs."""
        images = self.normalize(pixels)
        if not training:
            return self.inner(images, training=False)
        images = augment_batch(images, self.augment, self.pad, self.seed_generator)
        student = self.inner(images, training=True)
        if self.teacher is None:
            return student
        return student, ops.stop_gradient(self.teacher(images, training=False))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss; with a teacher, mixed with the distillation loss by ``alpha``."""
        if not isinstance(y_pred, (tuple, list)):
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        student, teacher = y_pred
        hard = super().compute_loss(x, y, student, sample_weight, training=training)
        soft = distillation_loss(
            student,
            teacher,
            temperature=self.temperature,
            from_logits=(self.model_logits, self.teacher_logits),
        )
        return self.alpha * hard + (1.0 - self.alpha) * soft

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Metrics of the student's outputs."""
        if isinstance(y_pred, (tuple, list)):
            y_pred = y_pred[0]
        return super().compute_metrics(x, y, y_pred, sample_weight)
