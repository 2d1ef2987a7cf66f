"""``TrainConfig`` and ``ImportConfig``: the train stage's settings, checked before data is read."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgesmith.core import recipe_settings
from edgesmith.core.config import Config, check_range, setting
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.pretrained import find as find_pretrained
from edgesmith.core.pretrained import is_zoo_model
from edgesmith.core.widths import check_widths
from edgesmith.tfkeras import MODEL_SUFFIXES
from edgesmith.train.devices import ACCELERATOR_CHOICES, AUGMENT_ON_CHOICES, STRATEGY_CHOICES
from edgesmith.train.zoo import RESNETS, resolve_widths

MODEL_NAMES = ("seed_cnn", "resnet8", "resnet20", "dscnn")  # the zoo (train/zoo.py)
RESIZABLE_MODELS = tuple(RESNETS)  # the zoo models that take widths

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
        model: an architecture of the zoo (``train/zoo.py``), ``zoo:NAME`` (a pretrained model
            the package ships, ``edgesmith zoo list``: its weights are the start) or the path
            of a Keras model file to fine-tune.
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
        alpha: weight of the hard-label loss when a teacher is set; ``1 - alpha`` goes to
            ``T^2 * KL(teacher_T || student_T)`` (the same names and loss as the compress
            stage's distillation).
        temperature: softening temperature ``T`` of the distillation loss.
        widths: channel counts for some layers of a zoo ResNet (``resnet8``/``resnet20``),
            keyed by the convolution that leads each group (``stem_conv``, a block's ``_conv1``,
            a block's ``_shortcut``): the thin network that ``compress prune --structure
            channels --widths`` with the same map would cut from the full one, trained from
            scratch instead (a thin network distilled for long can beat a pruned one
            fine-tuned briefly). None: the zoo's widths.
    """

    data: str = setting("digits", "data spec", metavar="SPEC")
    model: str = setting(
        "resnet8",
        "an architecture (resnet8, resnet20, seed_cnn, dscnn), zoo:NAME (a pretrained model: "
        "edgesmith zoo list) or a Keras model file, to fine-tune",
        metavar="NAME|FILE",
    )
    epochs: int = setting(30, "passes over the data", low=1)
    batch_size: int = recipe_settings.batch_size()
    optimizer: str = recipe_settings.optimizer()
    learning_rate: float | None = recipe_settings.learning_rate(
        "0.2 x batch/128 for sgd, 1e-3 adam"
    )
    momentum: float = setting(0.9, "SGD momentum", low=0.0, high=1.0, high_open=True)
    weight_decay: float = recipe_settings.weight_decay()
    schedule: str = setting("cosine", "learning-rate schedule", choices=SCHEDULES)
    warmup_epochs: float = setting(1.0, "linear warm-up epochs of the cosine schedule", low=0.0)
    label_smoothing: float = setting(
        0.1, "label smoothing of the cross-entropy", low=0.0, high=1.0, high_open=True
    )
    augment: str = setting("auto", "auto, none, or a comma list of crop, flip, erase (Keras 3)")
    augment_on: str = setting(
        "auto",
        "where to normalise and augment: host (tf.data) or device (in the training step, on the "
        "GPU if training on one); auto: device on a GPU",
        choices=AUGMENT_ON_CHOICES,
    )
    normalization: str = setting(
        "unit", "unit, raw, standard or scale=S,mean=a,b,c,std=a,b,c", metavar="NORM"
    )
    seed: int = setting(0, "seeds weights, shuffling and augmentation", low=0)
    accelerator: str = setting(
        "auto", "what trains; auto: a GPU when present", choices=ACCELERATOR_CHOICES
    )
    strategy: str = setting(
        "auto", "multiworker: train with the machines TF_CONFIG lists", choices=STRATEGY_CHOICES
    )
    precision: str = setting(
        "float32", "compute precision; the saved model is float32", choices=PRECISIONS
    )
    xla: bool = setting(False, "compile the training step with XLA")
    backend: str = setting(
        "tf_keras",
        "tf_keras: the tf_keras trainer; jax, torch or tensorflow: Keras 3 on that backend "
        "(pip install 'edgesmith[train-jax]' or '[train-torch]'), augmenting on the "
        "accelerator; the artifact is the same",
        choices=BACKENDS,
    )
    ema: float | None = setting(
        None,
        "average the weights with this decay (e.g. 0.999); the saved model is the average "
        "(Keras 3)",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    teacher: str | None = setting(
        None, "Keras 3 .keras file or train artifact to distil from (Keras 3)", metavar="PATH"
    )
    alpha: float = setting(0.5, "hard-label loss weight with --teacher", low=0.0, high=1.0)
    temperature: float = setting(4.0, "distillation temperature", low=0.1, high=100.0)
    widths: dict[str, int] | None = setting(
        None,
        "channel counts for a zoo ResNet's layers (stem_conv, *_conv1, *_shortcut), the names "
        "and meaning of compress prune --widths; a wrong name lists them",
        metavar="LAYER=N,...",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if is_zoo_model(self.model):
            self._check_pretrained()
        elif self.model not in MODEL_NAMES and not looks_like_model_path(self.model):
            raise EdgesmithError(
                f"unknown model {self.model!r}: expected one of {', '.join(MODEL_NAMES)} "
                "or the path of a Keras model file (.keras, .h5 or a SavedModel directory)"
            )
        if self.widths is not None:
            object.__setattr__(self, "widths", check_widths(self.widths))
            if self.model not in RESIZABLE_MODELS:
                raise EdgesmithError(
                    f"widths resize a zoo ResNet ({', '.join(RESIZABLE_MODELS)}); "
                    f"model {self.model!r} is not one"
                )
            resolve_widths(self.model, self.widths)  # a wrong name fails now, not after the data
        check_range("warmup_epochs", self.warmup_epochs, 0.0, float(self.epochs))
        self.augmentations(flip_ok=True)  # validates the text
        self._check_keras3_levers()

    def _check_keras3_levers(self) -> None:
        if self.teacher == "":
            raise EdgesmithError("teacher must be a model file or artifact directory")
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

    def _check_pretrained(self) -> None:
        """A ``zoo:NAME`` start: a shipped entry, its widths fixed, its normalisation kept."""
        entry = find_pretrained(self.model)  # an unknown name fails here, listing the shipped ones
        if self.widths is not None:
            raise EdgesmithError(
                f"{self.model} has trained widths; widths build a new network from scratch "
                "(--model resnet8 --widths ...), and zoo:resnet8-thin-cifar10 is the thin one"
            )
        expected = entry.normalization()
        if self.normalization != expected:
            raise EdgesmithError(
                f"{self.model} was trained on normalization {expected!r}; fine-tune it with the "
                f"same (got {self.normalization!r})"
            )

    @property
    def model_file(self) -> str:
        """The Keras file ``model`` names: itself, or a pretrained entry's (``zoo:NAME``)."""
        if is_zoo_model(self.model):
            return str(find_pretrained(self.model).keras_file())
        return self.model

    @property
    def peak_learning_rate(self) -> float:
        """The learning rate actually used (the default scales with the batch size)."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return 0.2 * self.batch_size / 128 if self.optimizer == "sgd" else 1e-3

    def optimizer_settings(self, steps_per_epoch: int) -> dict[str, Any]:
        """``make_optimizer``'s arguments for this run, at ``steps_per_epoch`` steps an epoch.

        Both trainers build their Keras's optimizer from these, so they schedule alike.
        """
        return {
            "name": self.optimizer,
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": steps_per_epoch * self.epochs,
            "warmup_steps": round(self.warmup_epochs * steps_per_epoch),
            "schedule": self.schedule,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "ema": self.ema,
        }

    def augmentations(self, *, flip_ok: bool) -> tuple[str, ...]:
        """Resolve ``augment`` for a dataset (``auto`` flips only data where flips keep the class).

        Raises:
            EdgesmithError: for an unknown augmentation name.
        """
        return resolve_augment(self.augment, flip_ok=flip_ok, allowed=KERAS3_AUGMENTATIONS)


@dataclasses.dataclass(frozen=True)
class ImportConfig(Config):
    """What ``edgesmith import`` registers: a user's trained model and the data that measures it.

    Attributes:
        model: a ``.keras``/``.h5`` file or a SavedModel directory.
        data: data spec whose eval split measures the model.
        normalization: what the model expects from raw pixels (the file cannot say):
            ``unit``, ``raw``, ``standard`` or ``scale=..,mean=..,std=..``.
    """

    model: str = setting(help=".keras or .h5 file, or SavedModel directory", metavar="FILE")
    data: str = setting(help="data spec to evaluate on", metavar="SPEC")
    normalization: str = setting(
        "unit", "what the model expects from pixels 0..255 (unit = p/255)", metavar="NORM"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.normalization != "standard":  # standard needs the data; the rest checks now
            from edgesmith.core.normalization import parse_normalization

            parse_normalization(self.normalization)
