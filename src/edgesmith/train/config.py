"""``TrainConfig``: every training setting, validated before any data is read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgesmith.core.config import Config, check_positive_int, check_range
from edgesmith.core.errors import EdgesmithError
from edgesmith.tfkeras import MODEL_SUFFIXES
from edgesmith.train.devices import ACCELERATOR_CHOICES, AUGMENT_ON_CHOICES, STRATEGY_CHOICES

MODEL_NAMES = ("seed_cnn", "resnet8", "resnet20", "dscnn")  # the zoo (train/zoo.py)

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")
AUGMENTATIONS = ("crop", "flip")
KERAS3_AUGMENTATIONS = (*AUGMENTATIONS, "erase")
"""The Keras 3 trainer adds random erasing (train/keras3_augment.py)."""
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
BACKENDS = ("tf_keras", "jax", "torch", "tensorflow")
"""``tf_keras``: the tf_keras trainer (train/trainer.py); the others: Keras 3 on that backend."""


def resolve_augment(
    text: str, *, flip_ok: bool, allowed: tuple[str, ...] = AUGMENTATIONS
) -> tuple[str, ...]:
    """``auto`` (crop, plus flip where the data allows), ``none``, or a comma list of names.

    ``allowed`` is what the caller implements (the Keras 3 trainer passes
    ``KERAS3_AUGMENTATIONS``), so no trainer accepts a name it would silently ignore.

    Raises:
        EdgesmithError: for an unknown augmentation name.
    """
    if text == "auto":
        return ("crop", "flip") if flip_ok else ("crop",)
    if text == "none":
        return ()
    names = tuple(part.strip() for part in str(text).split(",") if part.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise EdgesmithError(
            f"augment must be auto, none, or a comma list of {', '.join(allowed)}. "
            f"Received: {text!r}"
        )
    return names


def looks_like_model_path(text: str) -> bool:
    """Whether a ``--model`` value names a file or directory rather than a zoo model."""
    return Path(text).suffix.lower() in MODEL_SUFFIXES or "/" in text or Path(text).exists()


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """How to train: the defaults are the recipe that takes ResNet-8 past 87% on CIFAR-10.

    Attributes:
        data: data spec (``digits``, ``cifar10``, ``npz:PATH`` ...).
        model: zoo name or the path of a Keras model file to fine-tune.
        epochs: passes over the training split.
        batch_size: images per step.
        optimizer: ``sgd`` (Nesterov momentum) or ``adam``.
        learning_rate: peak rate; None picks 0.2 * batch_size / 128 for sgd (the linear scaling
            rule, base batch 128: a larger batch takes a proportionally larger step, and the
            warm-up keeps the first steps at a large rate stable), 1e-3 for adam.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay per unit learning rate (BatchNorm and biases
            excluded); 2.5e-3 at lr 0.2 shrinks weights as much per step as PyTorch's classic
            coupled 5e-4 at lr 0.1.
        schedule: ``cosine`` (linear warm-up, then cosine to zero) or ``constant``.
        warmup_epochs: epochs of linear warm-up for ``cosine``.
        label_smoothing: label smoothing of the cross-entropy.
        augment: ``auto`` (crop, plus flip where the data allows), ``none``, or a comma list of
            ``crop``, ``flip``, ``erase`` (random erasing of one square, Keras 3 backends only).
        augment_on: where normalisation and augmentation run: ``host`` (tf.data, on the CPU),
            ``device`` (inside the training step, on the device that trains; raw pixels travel
            to it) or ``auto`` (device when training on a GPU, host otherwise). The saved model
            is the same either way.
        normalization: ``unit``, ``raw``, ``standard`` or ``scale=..,mean=..,std=..``.
        seed: seeds weights, shuffling and augmentation.
        accelerator: ``auto``, ``cpu`` or ``gpu`` (what trains; a device profile is another thing).
        strategy: ``auto`` (this machine; all its GPUs) or ``multiworker`` (the machines
            ``TF_CONFIG`` lists; ``batch_size`` is then the global batch).
        precision: ``float32``, or ``mixed_float16`` (GPUs with tensor cores) /
            ``mixed_bfloat16`` (recent CPUs, TPUs): compute in 16 bits, variables in float32.
            The saved model is float32 either way.
        xla: compile the training step with XLA (often faster on GPUs, slower on CPUs).
        backend: ``tf_keras`` (the tf_keras trainer) or the Keras 3 backend to train on:
            ``jax``, ``torch`` or ``tensorflow`` (whichever the GPU's software stack runs).
        ema: decay of an exponential moving average of the weights (e.g. 0.999); the saved
            model holds the averaged weights. None: no averaging. Keras 3 backends only.
        teacher: a Keras 3 model file or train artifact directory to distil from (frozen).
            Keras 3 backends only.
        distill_alpha: weight of the hard-label loss when a teacher is set; ``1 - alpha`` goes
            to ``T^2 * KL(teacher_T || student_T)`` (the compress stage's convention).
        distill_temperature: softening temperature ``T`` of the distillation loss.
    """

    data: str = "digits"
    model: str = "resnet8"
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"
    learning_rate: float | None = None
    momentum: float = 0.9
    weight_decay: float = 2.5e-3
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    augment: str = "auto"
    augment_on: str = "auto"
    normalization: str = "unit"
    seed: int = 0
    accelerator: str = "auto"
    strategy: str = "auto"
    precision: str = "float32"
    xla: bool = False
    backend: str = "tf_keras"
    ema: float | None = None
    teacher: str | None = None
    distill_alpha: float = 0.5
    distill_temperature: float = 4.0

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES and not looks_like_model_path(self.model):
            raise EdgesmithError(
                f"unknown model {self.model!r}: expected one of {', '.join(MODEL_NAMES)} "
                "or the path of a Keras model file (.keras, .h5 or a SavedModel directory)"
            )
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        if self.optimizer not in OPTIMIZERS:
            raise EdgesmithError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}. Received: {self.optimizer!r}"
            )
        if self.schedule not in SCHEDULES:
            raise EdgesmithError(
                f"schedule must be one of {', '.join(SCHEDULES)}. Received: {self.schedule!r}"
            )
        if self.learning_rate is not None:
            check_range("learning_rate", self.learning_rate, 1e-8, 10.0)
        check_range("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        check_range("warmup_epochs", self.warmup_epochs, 0.0, float(self.epochs))
        check_range("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise EdgesmithError(f"seed must be a whole number >= 0. Received: {self.seed!r}")
        if self.augment_on not in AUGMENT_ON_CHOICES:
            raise EdgesmithError(
                f"augment_on must be one of {', '.join(AUGMENT_ON_CHOICES)}. "
                f"Received: {self.augment_on!r}"
            )
        if self.accelerator not in ACCELERATOR_CHOICES:
            raise EdgesmithError(
                f"accelerator must be one of {', '.join(ACCELERATOR_CHOICES)}. "
                f"Received: {self.accelerator!r}"
            )
        if self.strategy not in STRATEGY_CHOICES:
            raise EdgesmithError(
                f"strategy must be one of {', '.join(STRATEGY_CHOICES)}. "
                f"Received: {self.strategy!r}"
            )
        if self.precision not in PRECISIONS:
            raise EdgesmithError(
                f"precision must be one of {', '.join(PRECISIONS)}. Received: {self.precision!r}"
            )
        if not isinstance(self.xla, bool):
            raise EdgesmithError(f"xla must be true or false. Received: {self.xla!r}")
        self.augmentations(flip_ok=True)  # validates the text
        self._check_keras3_levers()

    def _check_keras3_levers(self) -> None:
        if self.backend not in BACKENDS:
            raise EdgesmithError(
                f"backend must be one of {', '.join(BACKENDS)}. Received: {self.backend!r}"
            )
        if self.ema is not None:
            check_range("ema", self.ema, 0.0, 1.0, high_open=True)
        if self.teacher is not None and (not isinstance(self.teacher, str) or not self.teacher):
            raise EdgesmithError(
                f"teacher must be a model file or artifact directory. Received: {self.teacher!r}"
            )
        check_range("distill_alpha", self.distill_alpha, 0.0, 1.0)
        check_range("distill_temperature", self.distill_temperature, 0.1, 100.0)
        if self.backend == "tf_keras":
            used = [
                name
                for name, on in (
                    ("ema", self.ema is not None),
                    ("teacher", self.teacher is not None),
                    ("augment erase", "erase" in self.augmentations(flip_ok=True)),
                )
                if on
            ]
            if used:
                raise EdgesmithError(
                    f"{', '.join(used)} needs a Keras 3 backend (--backend jax, torch or "
                    "tensorflow); the tf_keras trainer has no such option"
                )
            return
        if self.strategy != "auto":
            raise EdgesmithError(
                f"strategy {self.strategy!r} is tf_keras only; the Keras 3 trainer uses all "
                f"local GPUs (backend {self.backend!r})"
            )
        if self.augment_on == "host":
            raise EdgesmithError(
                "augment_on 'host' is tf_keras only; the Keras 3 trainer normalises and "
                f"augments inside the training step (backend {self.backend!r})"
            )

    @property
    def peak_learning_rate(self) -> float:
        """The learning rate actually used (the default scales with the batch size)."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return 0.2 * self.batch_size / 128 if self.optimizer == "sgd" else 1e-3

    def augmentations(self, *, flip_ok: bool) -> tuple[str, ...]:
        """Resolve ``augment`` for a dataset (``auto`` flips only data where flips keep the class).

        Raises:
            EdgesmithError: for an unknown augmentation name.
        """
        return resolve_augment(self.augment, flip_ok=flip_ok, allowed=KERAS3_AUGMENTATIONS)
