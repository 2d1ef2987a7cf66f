"""Every compression setting as a frozen config, validated before TensorFlow or any data loads.

A recipe with ``sparsity: 1.2`` must fail in milliseconds, not after a 4-second TensorFlow import
and a dataset load, so these classes import nothing heavy. Every technique's config shares the
fine-tuning settings of :class:`FinetuneConfig` (including an optional teacher, so that any
technique's fine-tuning can be distilled).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgesmith.core.config import Config, check_positive_int, check_range
from edgesmith.core.errors import EdgesmithError
from edgesmith.train import MODEL_NAMES, resolve_augment

STRUCTURES = ("unstructured", "2:4", "channels")
SCHEDULES = ("polynomial", "constant")
RANKINGS = ("l1", "l2", "bn")
OPTIMIZERS = ("sgd", "adam")
CLUSTER_INITS = ("kmeans_plus_plus", "linear", "density", "random")
SENSITIVITY_MODES = ("int8", "prune")
MIN_CLUSTERS = 2


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise EdgesmithError(f"{name} must be one of {', '.join(choices)}. Received: {value!r}")


def _check_names(name: str, value: object) -> None:
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
        raise EdgesmithError(f"{name} must be a list of layer names. Received: {value!r}")


def parse_widths(text: str) -> dict[str, int]:
    """``"conv2d=8,conv2d_3=24"`` -> ``{"conv2d": 8, "conv2d_3": 24}`` (the CLI's ``--widths``).

    Raises:
        EdgesmithError: for an item that is not ``LAYER=COUNT`` with a whole-number count.
    """
    widths: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, count = item.partition("=")
        count = count.strip()
        if not sep or not name.strip() or not (count.isascii() and count.isdigit()):
            raise EdgesmithError(
                f"widths must be LAYER=COUNT items separated by commas (e.g. conv2d=8,conv2d_3=24)."
                f" Received: {item!r}"
            )
        if name.strip() in widths:
            raise EdgesmithError(f"widths names {name.strip()!r} twice. Received: {text!r}")
        widths[name.strip()] = int(count)
    if not widths:
        raise EdgesmithError(f"widths names no group. Received: {text!r}")
    return widths


def _check_widths(widths: object, structure: str) -> dict[str, int]:
    if structure != "channels":
        raise EdgesmithError(f"widths applies to channel pruning only; structure is {structure!r}")
    if isinstance(widths, str):
        widths = parse_widths(widths)
    if not isinstance(widths, dict) or not widths:
        raise EdgesmithError(f"widths must map layer names to channel counts. Received: {widths!r}")
    for name, count in widths.items():
        if not isinstance(name, str) or isinstance(count, bool) or not isinstance(count, int):
            raise EdgesmithError(
                f"widths must map layer names to whole channel counts. Received: {name!r}: "
                f"{count!r}"
            )
        if count < 1:
            raise EdgesmithError(f"widths[{name!r}] must be >= 1 channel. Received: {count}")
    return dict(widths)


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(Config):
    """Fine-tuning after (or during) compression; shared by every technique.

    Attributes:
        epochs: passes over the training split.
        batch_size: images per step.
        optimizer: ``sgd`` (Nesterov momentum) or ``adam``.
        learning_rate: peak rate of a cosine schedule; None picks the technique's default
            (fine-tuning a trained model wants a rate about 10x below training's).
        weight_decay: decoupled weight decay per unit learning rate, as in training.
        label_smoothing: of the hard-label cross-entropy.
        augment: ``auto``, ``none`` or a comma list of ``crop``, ``flip`` (as in training).
        data: data spec to fine-tune and evaluate on; None reuses the source artifact's.
        seed: seeds weights, shuffling and augmentation.
        teacher: a Keras artifact whose soft labels guide the fine-tuning (distillation).
        alpha: weight of the hard-label loss when a teacher is set; ``1 - alpha`` goes to the
            teacher's soft labels.
        temperature: softening temperature of the distillation loss.
    """

    epochs: int = 2
    batch_size: int = 128
    optimizer: str = "sgd"
    learning_rate: float | None = None
    weight_decay: float = 2.5e-3
    label_smoothing: float = 0.0
    augment: str = "auto"
    data: str | None = None
    seed: int = 0
    teacher: str | None = None
    alpha: float = 0.5
    temperature: float = 4.0

    #: the peak learning rate used when ``learning_rate`` is None (per 128 images, for sgd)
    default_learning_rate = 0.02

    def __post_init__(self) -> None:
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.learning_rate is not None:
            check_range("learning_rate", self.learning_rate, 1e-8, 10.0)
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        check_range("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        resolve_augment(self.augment, flip_ok=True)  # validates the text
        if self.data is not None and not isinstance(self.data, str):
            raise EdgesmithError(f"data must be a data spec string. Received: {self.data!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise EdgesmithError(f"seed must be a whole number >= 0. Received: {self.seed!r}")
        if self.teacher is not None and not isinstance(self.teacher, str):
            raise EdgesmithError(
                f"teacher must be an artifact directory. Received: {self.teacher!r}"
            )
        check_range("alpha", self.alpha, 0.0, 1.0)
        check_range("temperature", self.temperature, 0.1, 100.0)

    @property
    def peak_learning_rate(self) -> float:
        """The learning rate actually used (the default scales with the batch size for sgd)."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        if self.optimizer == "adam":
            return self.default_learning_rate / 20
        return self.default_learning_rate * self.batch_size / 128

    def augmentations(self, *, flip_ok: bool) -> tuple[str, ...]:
        """Resolve ``augment`` for a dataset (``auto`` flips only where flips keep the class)."""
        return resolve_augment(self.augment, flip_ok=flip_ok)


@dataclasses.dataclass(frozen=True)
class PruneConfig(FinetuneConfig):
    """Pruning: unstructured magnitude, 2:4 structured, or channel pruning that rebuilds layers.

    Attributes:
        sparsity: fraction of weights to zero (``unstructured``), or of channels to remove
            (``channels``, unless ``mac_reduction`` is set). ``2:4`` is 0.5 by definition.
        structure: ``unstructured``, ``2:4`` or ``channels``.
        sparsity_scope: ``model``: the target holds over all conv/dense kernels (the pruned
            layers make up for those left dense); ``layers``: each pruned layer gets it (tfmot's
            meaning).
        schedule: ``polynomial`` (sparsity rises from 0 to the target, cubic) or ``constant``.
        pruning_fraction: share of the fine-tuning steps over which sparsity ramps up; the rest
            recovers accuracy with the final mask fixed.
        frequency: at most this many steps between mask updates (lowered for short runs so
            the last update lands exactly on the target).
        skip_layers: layer names never pruned.
        prune_first_layer: also prune the first conv (it sees raw pixels and holds few weights).
        min_weights: layers with fewer kernel weights are left dense (too small to matter).
        ranking: channel importance: ``l1``/``l2`` norm of each filter, or ``bn`` (|gamma| of
            the BatchNorm that follows).
        mac_reduction: for ``channels``: remove channels until MACs drop by this fraction
            (the channel fraction is searched); overrides ``sparsity``.
        round_to: for ``channels``: keep a multiple of this many channels per group
            (SIMD-friendly widths).
        widths: for ``channels``: exact channel counts for some groups, keyed by a layer that
            produces the group (``{"conv2d_3": 24}``); the other groups follow ``sparsity`` or
            ``mac_reduction``, or keep every channel when neither is set. Non-uniform widths are
            how a model gets under a latency budget: equal fractions are rarely the fastest.
        max_latency_ratio: for ``channels``: search the widths
            (:mod:`edgesmith.compress.width_search`) until the int8 .tflite runs in at most
            this fraction of the source's time on this machine (batch 1); ``mac_reduction``,
            when set, must hold too. Replaces ``sparsity`` and ``widths``.
        param_reduction: with ``max_latency_ratio``: the searched widths also remove at least
            this fraction of the parameters (an int8 file is mostly its weights).
        latency_threads: runtime threads while the width search times candidates.
    """

    epochs: int = 4
    sparsity: float | None = None
    structure: str = "unstructured"
    sparsity_scope: str = "model"
    schedule: str = "polynomial"
    pruning_fraction: float = 0.75
    frequency: int = 100
    skip_layers: tuple[str, ...] = ()
    prune_first_layer: bool = False
    min_weights: int = 1024
    ranking: str = "l1"
    mac_reduction: float | None = None
    round_to: int = 1
    widths: dict[str, int] | None = None
    max_latency_ratio: float | None = None
    param_reduction: float | None = None
    latency_threads: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("structure", self.structure, STRUCTURES)
        if self.widths is not None:
            object.__setattr__(self, "widths", _check_widths(self.widths, self.structure))
        if self.max_latency_ratio is not None and self.structure != "channels":
            raise EdgesmithError(
                f"max_latency_ratio applies to channel pruning only; structure is "
                f"{self.structure!r}"
            )
        if self.param_reduction is not None and self.max_latency_ratio is None:
            raise EdgesmithError(
                "param_reduction is a target of the width search; give max_latency_ratio too"
            )
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("sparsity_scope", self.sparsity_scope, ("model", "layers"))
        _check_choice("ranking", self.ranking, RANKINGS)
        _check_names("skip_layers", self.skip_layers)
        object.__setattr__(self, "skip_layers", tuple(self.skip_layers))
        check_range("pruning_fraction", self.pruning_fraction, 0.05, 1.0)
        check_positive_int("frequency", self.frequency)
        check_positive_int("round_to", self.round_to)
        if isinstance(self.min_weights, bool) or not isinstance(self.min_weights, int):
            raise EdgesmithError(
                f"min_weights must be a whole number >= 0. Received: {self.min_weights!r}"
            )
        check_range("min_weights", self.min_weights, 0, 1e12)
        if self.structure == "2:4":
            if self.sparsity is not None and self.sparsity != 0.5:
                raise EdgesmithError(
                    f"2:4 sparsity is 0.5 by definition; leave sparsity out. Received: "
                    f"{self.sparsity!r}"
                )
        elif self.structure == "channels" and self.mac_reduction is not None:
            check_range("mac_reduction", self.mac_reduction, 0.0, 1.0, high_open=True)
        elif self.structure == "channels" and self.widths and self.sparsity is None:
            pass  # the named groups shrink, the others keep every channel
        elif self.structure == "channels" and self.max_latency_ratio is not None:
            pass  # the search sets every width
        elif self.sparsity is None:
            raise EdgesmithError(f"{self.structure} pruning needs a sparsity in [0.0, 1.0)")
        if self.sparsity is not None:
            check_range("sparsity", self.sparsity, 0.0, 1.0, high_open=True)
        check_positive_int("latency_threads", self.latency_threads)
        if self.max_latency_ratio is not None:
            check_range("max_latency_ratio", self.max_latency_ratio, 0.01, 1.0)
            taken = [k for k in ("sparsity", "widths") if getattr(self, k) is not None]
            if taken:
                raise EdgesmithError(
                    f"max_latency_ratio searches every width itself; leave out {taken[0]}"
                )
            if self.param_reduction is not None:
                check_range("param_reduction", self.param_reduction, 0.0, 1.0, high_open=True)

    @property
    def target_sparsity(self) -> float:
        """The sparsity aimed at: 0.5 for 2:4, else ``sparsity``."""
        if self.structure == "2:4":
            return 0.5
        return float(self.sparsity or 0.0)


@dataclasses.dataclass(frozen=True)
class QatConfig(FinetuneConfig):
    """Quantization-aware training (tfmot ``quantize_model``), int8 with per-channel conv weights.

    Attributes:
        preserve_sparsity: keep the source's zero weights zero during QAT (tfmot's
            pruning-preserving scheme), for a pruned source.
        skip_layers: layer names left in float (annotated fallback).
    """

    epochs: int = 2
    preserve_sparsity: bool = False
    skip_layers: tuple[str, ...] = ()

    default_learning_rate = 0.005

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_names("skip_layers", self.skip_layers)
        object.__setattr__(self, "skip_layers", tuple(self.skip_layers))
        if not isinstance(self.preserve_sparsity, bool):
            raise EdgesmithError(
                f"preserve_sparsity must be true or false. Received: {self.preserve_sparsity!r}"
            )


@dataclasses.dataclass(frozen=True)
class DistillConfig(FinetuneConfig):
    """Knowledge distillation of a student (zoo name or artifact) from a teacher artifact.

    The teacher is the artifact the step starts from (``--teacher`` on the command line, the
    previous artifact in a recipe).

    The loss is ``alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(teacher_T || student_T)``.

    Attributes:
        student: a zoo model name (trained from scratch) or a Keras artifact directory
            (fine-tuned).
        warmup_epochs: linear warm-up epochs (used for a student trained from scratch).
    """

    epochs: int = 30
    student: str = "resnet8"
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0

    default_learning_rate = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.student, str) or not self.student:
            raise EdgesmithError(
                f"student must be a zoo model name or an artifact directory. "
                f"Received: {self.student!r}"
            )
        if self.student not in MODEL_NAMES and not Path(self.student).exists():
            raise EdgesmithError(
                f"unknown student {self.student!r}: expected a zoo model name "
                f"({', '.join(MODEL_NAMES)}) or an artifact directory"
            )
        check_range("warmup_epochs", self.warmup_epochs, 0.0, float(self.epochs))


@dataclasses.dataclass(frozen=True)
class ClusterConfig(FinetuneConfig):
    """Weight clustering (tfmot): each layer's weights share ``clusters`` distinct values.

    Attributes:
        clusters: distinct values per layer (>= 2); 16 fits 4-bit palette indices.
        init: centroid initialisation: ``kmeans_plus_plus``, ``linear``, ``density``,
            ``random``.
        preserve_sparsity: keep zero weights zero (for a pruned source).
        skip_layers: layer names never clustered.
        cluster_first_layer: also cluster the first conv.
        min_weights: layers with fewer kernel weights stay unclustered.
    """

    epochs: int = 2
    clusters: int = 16
    init: str = "kmeans_plus_plus"
    preserve_sparsity: bool = False
    skip_layers: tuple[str, ...] = ()
    cluster_first_layer: bool = False
    min_weights: int = 1024

    default_learning_rate = 0.005

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.clusters, bool) or not isinstance(self.clusters, int):
            raise EdgesmithError(
                f"clusters must be a whole number >= 2. Received: {self.clusters!r}"
            )
        if self.clusters < MIN_CLUSTERS:
            raise EdgesmithError(f"clusters must be a whole number >= 2. Received: {self.clusters}")
        _check_choice("init", self.init, CLUSTER_INITS)
        _check_names("skip_layers", self.skip_layers)
        object.__setattr__(self, "skip_layers", tuple(self.skip_layers))
        check_range("min_weights", self.min_weights, 0, 1e12)


@dataclasses.dataclass(frozen=True)
class SensitivityConfig(Config):
    """Per-layer sensitivity: how much accuracy each layer costs when it alone is compressed.

    Attributes:
        mode: ``int8`` (one layer at a time kept float in a full-int8 TFLite model, plus the
            converter's per-tensor quantisation error) or ``prune`` (one layer at a time pruned
            to each sparsity, no fine-tuning).
        sparsities: the sweep for ``prune``.
        max_eval: evaluate on at most this many eval images.
        calibration_samples: training images for int8 calibration.
        data: data spec; None reuses the source artifact's.
        min_weights: layers with fewer weights are left out of the ``prune`` sweep.
    """

    mode: str = "int8"
    sparsities: tuple[float, ...] = (0.5, 0.75, 0.9)
    max_eval: int = 2000
    calibration_samples: int = 500
    data: str | None = None
    min_weights: int = 0

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, SENSITIVITY_MODES)
        if not isinstance(self.sparsities, (tuple, list)) or not self.sparsities:
            raise EdgesmithError(
                f"sparsities must be a non-empty list. Received: {self.sparsities!r}"
            )
        for value in self.sparsities:
            check_range("sparsity", value, 0.0, 1.0, high_open=True)
        object.__setattr__(self, "sparsities", tuple(float(v) for v in self.sparsities))
        check_positive_int("max_eval", self.max_eval)
        check_positive_int("calibration_samples", self.calibration_samples)
        check_range("min_weights", self.min_weights, 0, 1e12)


@dataclasses.dataclass(frozen=True)
class AutotuneConfig(Config):
    """Accuracy budget for int8: PTQ, then QAT, then float fallbacks, until within budget.

    Attributes:
        max_accuracy_drop: allowed drop of the exported int8 file's accuracy below the float
            model's, in percentage points.
        qat: the QAT attempt's settings (a mapping of :class:`QatConfig` fields).
        max_float_layers: the most sensitive layers that may be left in float, one more per
            attempt.
        attempts: which kinds of attempt to make, in this order: ``ptq``, ``qat``, ``float``
            (drop ``qat`` when there is no time to train).
        calibration_samples: training images for int8 calibration.
        max_eval: evaluate attempts on at most this many eval images (None: all); the final
            attempt is always measured on the whole eval split.
        data: data spec; None reuses the source artifact's.
    """

    max_accuracy_drop: float = 1.0
    qat: QatConfig = dataclasses.field(default_factory=QatConfig)
    max_float_layers: int = 3
    attempts: tuple[str, ...] = ("ptq", "qat", "float")
    calibration_samples: int = 500
    max_eval: int | None = None
    data: str | None = None

    def __post_init__(self) -> None:
        check_range("max_accuracy_drop", self.max_accuracy_drop, 0.0, 100.0)
        if isinstance(self.qat, dict):
            object.__setattr__(self, "qat", QatConfig.from_dict(self.qat))
        if not isinstance(self.qat, QatConfig):
            raise EdgesmithError(f"qat must be a mapping of QAT settings. Received: {self.qat!r}")
        check_range("max_float_layers", self.max_float_layers, 0, 1000)
        raw = self.attempts.split(",") if isinstance(self.attempts, str) else self.attempts
        if not isinstance(raw, (list, tuple)) or not all(isinstance(a, str) for a in raw):
            raise EdgesmithError(
                f"attempts must be a list of ptq, qat, float. Received: {self.attempts!r}"
            )
        attempts = tuple(a.strip() for a in raw)
        if not attempts or any(a not in ("ptq", "qat", "float") for a in attempts):
            raise EdgesmithError(
                f"attempts must be a list of ptq, qat, float. Received: {list(raw)!r}"
            )
        if len(set(attempts)) != len(attempts):
            raise EdgesmithError(f"attempts names one kind twice. Received: {list(attempts)!r}")
        if attempts == ("float",) and self.max_float_layers == 0:
            raise EdgesmithError(
                "attempts float with max_float_layers 0 would try nothing; allow at least one "
                "float layer or add ptq/qat"
            )
        object.__setattr__(self, "attempts", attempts)
        check_positive_int("calibration_samples", self.calibration_samples)
        if self.max_eval is not None:
            check_positive_int("max_eval", self.max_eval)
