"""Every compression setting as a frozen config, validated before TensorFlow or any data loads.

A recipe with ``sparsity: 1.2`` must fail in milliseconds, not after a 4-second TensorFlow import
and a dataset load, so these classes import nothing heavy. Every technique's config shares the
fine-tuning settings of :class:`FinetuneConfig` (including an optional teacher, so that any
technique's fine-tuning can be distilled).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgesmith.core import recipe_settings
from edgesmith.core.config import Config, check_range, setting
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.widths import check_widths
from edgesmith.train import MODEL_NAMES, resolve_augment

STRUCTURES = ("unstructured", "2:4", "channels")
"""``channels`` is :class:`ChannelPruneConfig`'s; the others :class:`PruneConfig`'s."""
SCHEDULES = ("polynomial", "constant")
RANKINGS = ("l1", "l2", "bn")
CLUSTER_INITS = ("kmeans_plus_plus", "linear", "density", "random")
SENSITIVITY_MODES = ("int8", "prune")
MIN_CLUSTERS = 2


def _epochs(default: int) -> int:
    return setting(default, "fine-tuning passes over the training data", low=1)


def _removed_fraction(help: str, **options: Any) -> float | None:
    """A share of the model to remove, in [0, 1); None: not asked for."""
    return setting(None, help, low=0.0, high=1.0, high_open=True, **options)


def _skip_layers(what: str) -> tuple[str, ...]:
    return setting((), f"layer names to {what}", metavar="A,B")


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

    epochs: int = _epochs(2)
    batch_size: int = recipe_settings.batch_size()
    optimizer: str = recipe_settings.optimizer()
    learning_rate: float | None = recipe_settings.learning_rate(
        "the technique's, scaled with the batch for sgd"
    )
    weight_decay: float = recipe_settings.weight_decay()
    label_smoothing: float = setting(
        0.0, "label smoothing of the hard-label loss", low=0.0, high=1.0, high_open=True
    )
    augment: str = setting("auto", "auto, none, or a comma list of crop, flip")
    data: str | None = setting(None, "data spec (default: the source artifact's)", metavar="SPEC")
    seed: int = setting(0, "seeds weights, shuffling and augmentation", low=0)
    teacher: str | None = setting(
        None, "distil from this Keras artifact while fine-tuning", metavar="DIR"
    )
    alpha: float = setting(0.5, "hard-label loss weight with a teacher", low=0.0, high=1.0)
    temperature: float = setting(4.0, "distillation temperature", low=0.1, high=100.0)

    #: the peak learning rate used when ``learning_rate`` is None (per 128 images, for sgd)
    default_learning_rate = 0.02

    def __post_init__(self) -> None:
        super().__post_init__()
        resolve_augment(self.augment, flip_ok=True)  # validates the text

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
    """Weight pruning with tfmot: unstructured magnitude, or 2:4 structured.

    The model keeps its shape: zeros shrink the file only gzipped (or with ``--sparse``) and
    speed up only kernels that skip them. Channel pruning, which rebuilds thinner layers, has
    its own settings: :class:`ChannelPruneConfig` (``from_dict`` picks it for
    ``structure: channels``).

    Attributes:
        sparsity: fraction of weights to zero (``unstructured``); ``2:4`` is 0.5 by definition.
        structure: ``unstructured`` or ``2:4``.
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
    """

    epochs: int = _epochs(4)
    sparsity: float | None = _removed_fraction(
        "fraction of weights (unstructured) or channels (channels) to remove, in [0, 1)"
    )
    structure: str = setting("unstructured", "unstructured, 2:4 or channels", choices=STRUCTURES)
    sparsity_scope: str = setting(
        "model",
        "model: the target holds over all kernels; layers: in each pruned layer",
        choices=("model", "layers"),
    )
    schedule: str = setting("polynomial", "how sparsity rises to the target", choices=SCHEDULES)
    pruning_fraction: float = setting(
        0.75, "share of the fine-tuning steps over which sparsity ramps up", low=0.05, high=1.0
    )
    frequency: int = setting(100, "at most this many steps between mask updates", low=1)
    skip_layers: tuple[str, ...] = _skip_layers("leave dense")
    prune_first_layer: bool = setting(False, "also prune the first conv")
    min_weights: int = setting(1024, "layers with fewer kernel weights stay dense", low=0)

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """Build the config; ``structure: channels`` gives a :class:`ChannelPruneConfig`."""
        if (
            cls is PruneConfig
            and isinstance(values, dict)
            and values.get("structure") == "channels"
        ):
            return ChannelPruneConfig.from_dict(values)
        return super().from_dict(values)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.structure == "channels":
            raise EdgesmithError(
                "structure channels takes other settings: use ChannelPruneConfig (channel "
                "pruning rebuilds thinner layers)"
            )
        if self.structure == "2:4":
            if self.sparsity is not None and self.sparsity != 0.5:
                raise EdgesmithError(
                    f"2:4 sparsity is 0.5 by definition; leave sparsity out. Received: "
                    f"{self.sparsity!r}"
                )
        elif self.sparsity is None:
            raise EdgesmithError(f"{self.structure} pruning needs a sparsity in [0.0, 1.0)")

    @property
    def target_sparsity(self) -> float:
        """The sparsity aimed at: 0.5 for 2:4, else ``sparsity``."""
        if self.structure == "2:4":
            return 0.5
        return float(self.sparsity or 0.0)


@dataclasses.dataclass(frozen=True)
class ChannelPruneConfig(FinetuneConfig):
    """Channel pruning: remove whole filters and rebuild thinner layers.

    The layers are rebuilt consistently across residual adds: fewer params, fewer MACs, a
    smaller file and lower latency.

    Give one of ``sparsity``, ``mac_reduction``, ``widths`` or ``max_latency_ratio``.

    Attributes:
        sparsity: fraction of each group's channels to remove (unless ``mac_reduction`` is set).
        structure: always ``channels`` (recorded so a recipe step reads as it was written).
        ranking: channel importance: ``l1``/``l2`` norm of each filter, or ``bn`` (|gamma| of
            the BatchNorm that follows).
        mac_reduction: remove channels until MACs drop by this fraction (the channel fraction
            is searched); overrides ``sparsity``.
        round_to: keep a multiple of this many channels per group (SIMD-friendly widths).
        widths: exact channel counts for some groups, keyed by a layer that produces the group
            (``{"conv2d_3": 24}``); the other groups follow ``sparsity`` or ``mac_reduction``,
            or keep every channel when neither is set. Non-uniform widths are how a model gets
            under a latency budget: equal fractions are rarely the fastest.
        max_latency_ratio: search the widths (:mod:`edgesmith.compress.width_search`) until the
            int8 .tflite runs in at most this fraction of the source's time on this machine
            (batch 1); ``mac_reduction``, when set, must hold too. Replaces ``sparsity`` and
            ``widths``.
        param_reduction: with ``max_latency_ratio``: the searched widths also remove at least
            this fraction of the parameters (an int8 file is mostly its weights).
        latency_threads: runtime threads while the width search times candidates.
    """

    epochs: int = _epochs(4)
    sparsity: float | None = _removed_fraction("", flag="")
    structure: str = setting("channels", "", flag="", choices=("channels",))
    ranking: str = setting("l1", "channels: filter importance", choices=RANKINGS)
    mac_reduction: float | None = _removed_fraction(
        "channels: remove channels until MACs drop by this fraction, in [0, 1)"
    )
    round_to: int = setting(
        1,
        "channels: keep a multiple of N channels per group; 8 suits XNNPACK's int8 kernels "
        "(measured on x86: 11 channels cost what 16 do)",
        low=1,
    )
    widths: dict[str, int] | None = setting(
        None,
        "channels: exact channel counts (not rounded) for the groups these layers produce; the "
        "others follow --sparsity/--mac-reduction, or stay whole. A wrong name lists the groups",
        metavar="LAYER=N,...",
    )
    max_latency_ratio: float | None = setting(
        None,
        "channels: search the widths by timing int8 .tflite candidates on this machine until "
        "the model runs in <= R x the source's time (batch 1); with --mac-reduction, that holds "
        "too; not with --sparsity/--widths. Seconds per step for small CNNs; run it on the "
        "target device",
        metavar="R",
        low=0.01,
        high=1.0,
    )
    param_reduction: float | None = _removed_fraction(
        "channels, with --max-latency-ratio: the search also removes at least this fraction of "
        "the parameters (most of an int8 file; ~0.55 for a file ~half the size)",
        metavar="P",
    )
    latency_threads: int = setting(
        1, "channels: runtime threads while the width search times candidates", low=1
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.widths is not None:
            object.__setattr__(self, "widths", check_widths(self.widths))
        if self.param_reduction is not None and self.max_latency_ratio is None:
            raise EdgesmithError(
                "param_reduction is a target of the width search; give max_latency_ratio too"
            )
        if self.max_latency_ratio is not None:
            taken = [k for k in ("sparsity", "widths") if getattr(self, k) is not None]
            if taken:
                raise EdgesmithError(
                    f"max_latency_ratio searches every width itself; leave out {taken[0]}"
                )
        aims = (self.sparsity, self.mac_reduction, self.widths, self.max_latency_ratio)
        if all(aim is None for aim in aims):
            raise EdgesmithError(
                "channel pruning needs a sparsity in [0.0, 1.0), a mac_reduction, widths or a "
                "max_latency_ratio"
            )

    @property
    def target_sparsity(self) -> float:
        """The channel fraction aimed at (0 when the widths or MACs decide)."""
        return float(self.sparsity or 0.0)


@dataclasses.dataclass(frozen=True)
class QatConfig(FinetuneConfig):
    """Quantization-aware training (tfmot ``quantize_model``), int8 with per-channel conv weights.

    Attributes:
        preserve_sparsity: keep the source's zero weights zero during QAT (tfmot's
            pruning-preserving scheme), for a pruned source.
        skip_layers: layer names left in float (annotated fallback).
    """

    epochs: int = _epochs(2)
    preserve_sparsity: bool = setting(
        False, "keep a pruned source's zeros zero (tfmot's pruning-preserving QAT)"
    )
    skip_layers: tuple[str, ...] = _skip_layers("keep float")

    default_learning_rate = 0.005


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

    epochs: int = _epochs(30)
    student: str = setting("resnet8", "zoo model name or artifact directory", metavar="NAME|DIR")
    warmup_epochs: float = setting(1.0, "linear warm-up epochs of a zoo student", low=0.0)

    default_learning_rate = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.student:
            raise EdgesmithError("student must be a zoo model name or an artifact directory")
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

    epochs: int = _epochs(2)
    clusters: int = setting(16, "values per layer", low=MIN_CLUSTERS)
    init: str = setting("kmeans_plus_plus", "centroid initialisation", choices=CLUSTER_INITS)
    preserve_sparsity: bool = setting(
        False,
        "keep a pruned source's zeros zero (tfmot's sparsity-preserving clustering): the file "
        "then gzips smaller than the pruned one alone",
    )
    skip_layers: tuple[str, ...] = _skip_layers("leave alone")
    cluster_first_layer: bool = setting(False, "also cluster the first conv")
    min_weights: int = setting(1024, "layers with fewer kernel weights stay unclustered", low=0)

    default_learning_rate = 0.005


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

    mode: str = setting("int8", "what each layer alone gets", choices=SENSITIVITY_MODES)
    sparsities: tuple[float, ...] = setting(
        (0.5, 0.75, 0.9),
        "the prune sweep (default: 0.5,0.75,0.9)",
        metavar="A,B",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    max_eval: int = setting(2000, "eval images", low=1)
    calibration_samples: int = setting(500, "training images for int8 calibration", low=1)
    data: str | None = setting(None, "data spec (default: the source artifact's)", metavar="SPEC")
    min_weights: int = setting(0, "prune: layers with fewer weights are left out", low=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sparsities:
            raise EdgesmithError("sparsities must be a non-empty list")
        object.__setattr__(self, "sparsities", tuple(float(v) for v in self.sparsities))


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

    max_accuracy_drop: float = setting(
        1.0, "allowed drop in accuracy points (0.5 = half a point)", low=0.0, high=100.0
    )
    qat: QatConfig = setting(QatConfig, "", flag="", factory=True)
    max_float_layers: int = setting(3, "most sensitive ops that may stay float", low=0)
    attempts: tuple[str, ...] = setting(
        ("ptq", "qat", "float"),
        "ptq,qat,float (default: all, in that order)",
        choices=("ptq", "qat", "float"),
    )
    calibration_samples: int = setting(500, "training images for int8 calibration", low=1)
    max_eval: int | None = setting(None, "eval images per attempt (default: all)", low=1)
    data: str | None = setting(None, "data spec (default: the source artifact's)", metavar="SPEC")

    def __post_init__(self) -> None:
        if isinstance(self.qat, dict):
            object.__setattr__(self, "qat", QatConfig.from_dict(self.qat))
        if not isinstance(self.qat, QatConfig):
            raise EdgesmithError(f"qat must be a mapping of QAT settings. Received: {self.qat!r}")
        super().__post_init__()
        if not self.attempts:
            raise EdgesmithError("attempts must be a list of ptq, qat, float")
        if len(set(self.attempts)) != len(self.attempts):
            raise EdgesmithError(
                f"attempts names one kind twice. Received: {list(self.attempts)!r}"
            )
        if self.attempts == ("float",) and self.max_float_layers == 0:
            raise EdgesmithError(
                "attempts float with max_float_layers 0 would try nothing; allow at least one "
                "float layer or add ptq/qat"
            )
