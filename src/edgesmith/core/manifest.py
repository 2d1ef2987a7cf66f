"""The artifact manifest as a typed contract: what every stage writes and what the others read.

``manifest.json`` is the only door between stages (:mod:`edgesmith.core.artifacts`). Its
contents are declared here, section by section, as frozen dataclasses: a writer builds them
(:meth:`edgesmith.core.artifacts.ArtifactWriter.commit` takes one keyword argument per section)
and a reader gets them back from :meth:`Manifest.from_dict`, which validates every value and
names the key and the value it refuses, in one line.

The JSON is schema version 1, key for key what edgesmith wrote before the records existed, so
older artifacts read unchanged and new ones look the same. The rules of the mapping:

- A record writes its fields in declaration order (``metrics`` in the order its writer
  measured them, which differs by stage). An optional field left ``None`` is not
  written, except where the writer has always written it as ``null`` (``input.quantization``
  of a float file, a channel pruning's ``channel_fraction`` after a width search ...), which the
  field declares (``keep_null``).
- Unknown keys are refused, at the top level and in every record: a key this edgesmith does not
  know is either written by a newer one (which would also read it) or hand-edited, and reading
  around it would silently drop what it says. Open-ended content is kept only where it is open
  by nature, as plain JSON values: a stage's resolved ``config``, the per-epoch ``history``, the
  op report's tensor records, per-layer and per-group maps.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any, ClassVar, TypeVar

from edgesmith.core.config import json_ready
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.normalization import Normalization

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
STAGES = ("train", "compress", "export")
FORMATS = ("keras", "tflite", "onnx")
OUTPUT_KINDS = ("probabilities", "logits")
REQUIRED_KEYS = (
    "schema_version",
    "id",
    "parent",
    "stage",
    "technique",
    "format",
    "files",
    "model_file",
    "config",
    "input",
    "labels",
    "dataset",
    "metrics",
    "tool_versions",
    "created",
)

R = TypeVar("R", bound="_Record")


# ---------------------------------------------------------------------------------------------
# Value checks: each takes the JSON value and its dotted key, and returns the typed value.


class _Invalid(Exception):
    """A value of the wrong type or range; turned into one EdgesmithError line by the caller."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(key: str, expected: str, value: Any) -> _Invalid:
    return _Invalid(f"{key} must be {expected}. Received: {_short(value)}")


def _unknown(key: str) -> _Invalid:
    from edgesmith import __version__

    return _Invalid(
        f"unknown key {key} (a newer edgesmith wrote it, or the manifest was edited; this one "
        f"({__version__}) does not read it)"
    )


Check = Callable[[Any, str], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise _bad(key, "a string", value)
    return value


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(key, "true or false", value)
    return value


def _integer(value: Any, key: str) -> int:
    if not _is_int(value):
        raise _bad(key, "an integer", value)
    return value


def _count(value: Any, key: str) -> int:
    if not _is_int(value) or value < 0:
        raise _bad(key, "a non-negative integer", value)
    return value


def _number(value: Any, key: str) -> int | float:
    if not (_is_int(value) or isinstance(value, float)):
        raise _bad(key, "a number", value)
    return value


def _json_object(value: Any, key: str) -> dict[str, Any]:  # contents open by design
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _bad(key, "an object", value)
    return dict(value)


def _one_of(*choices: str) -> Check:
    def check(value: Any, key: str) -> str:
        if value not in choices or not isinstance(value, str):
            raise _bad(key, f"one of {choices}", value)
        return value

    return check


def _list_of(item: Check, expected: str) -> Check:
    def check(value: Any, key: str) -> tuple:
        if not isinstance(value, list):
            raise _bad(key, expected, value)
        items = []
        for entry in value:
            try:
                items.append(item(entry, key))
            except _Invalid:
                raise _bad(key, expected, entry) from None
        return tuple(items)

    return check


def _map_of(item: Check, expected: str) -> Check:
    def check(value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _bad(key, expected, value)
        mapping = {}
        for name, entry in value.items():
            try:
                mapping[name] = item(entry, key)
            except _Invalid:
                raise _bad(key, expected, {name: entry}) from None
        return mapping

    return check


def _positive(value: Any, key: str) -> int:
    if not _is_int(value) or value <= 0:
        raise _bad(key, "a positive integer", value)
    return value


_strings = _list_of(_string, "a list of strings")
_objects = _list_of(_json_object, "a list of objects")

# Bounds on what a (possibly hostile) file may declare: far above any real image model, far
# below what would make a reader allocate or loop without end.
MAX_DIMS = 8
MAX_SIDE = 1 << 20
MAX_ELEMENTS = 1 << 28
MAX_CHANNEL_VALUES = 1024
MAX_LABELS = 100_000
MAX_LABEL_CHARS = 256


def _finite(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _shape(value: Any, key: str) -> tuple[int, ...]:
    expected = (
        f"a list of positive integers (1 to {MAX_DIMS} of them, each <= {MAX_SIDE}, "
        f"at most {MAX_ELEMENTS} elements in all)"
    )
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_DIMS:
        raise _bad(key, expected, value)
    if not all(_is_int(d) and 0 < d <= MAX_SIDE for d in value) or math.prod(value) > MAX_ELEMENTS:
        raise _bad(key, expected, value)
    return tuple(value)


def _positive_finite(value: Any, key: str) -> float:
    if not (_finite(value) and value > 0):
        raise _bad(key, "a finite number > 0", value)
    return value


def _normalization(value: Any, key: str) -> Normalization:
    expected = "a normalization record (name, scale, mean, std)"
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise _bad(key, expected, value)
    if set(value) != {"name", "scale", "mean", "std"}:
        raise _bad(key, "a normalization record with exactly name, scale, mean, std", value)
    _positive_finite(value["scale"], f"{key}.scale")
    for part, low in (("mean", None), ("std", 0)):
        values = value[part]
        what = "finite numbers" if low is None else "finite numbers > 0"
        wanted = f"a list of 1 to {MAX_CHANNEL_VALUES} {what}"
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_CHANNEL_VALUES:
            raise _bad(f"{key}.{part}", wanted, values)
        for number in values:
            if not _finite(number) or (low is not None and number <= low):
                raise _bad(f"{key}.{part}", wanted, number)
    try:
        return Normalization.from_dict(value)
    except (EdgesmithError, TypeError, ValueError, OverflowError):
        raise _bad(key, expected, value) from None


def _zero_point(value: Any, key: str) -> int:
    if not _is_int(value) or not -(1 << 31) <= value < (1 << 31):
        raise _bad(key, "an integer in the int32 range", value)
    return value


def _record(cls: type[_Record]) -> Check:
    def check(value: Any, key: str) -> _Record:
        return cls._decode(value, key)

    return check


# ---------------------------------------------------------------------------------------------
# Records


def _field(
    check: Check, *, required: bool = False, keep_null: bool | str = False, doc: str = ""
) -> Any:
    """A record field: optional (default None) unless ``required``; ``doc`` says why it is there.

    ``keep_null`` writes the field as ``null`` when it is None: always (True), or when the
    field it names is set (a field written beside that one).
    """
    metadata = {"check": check, "required": required, "keep_null": keep_null, "doc": doc}
    if required:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=None, metadata=metadata)


def _fields(cls: type) -> list[dataclasses.Field]:
    """A record's JSON fields (those declared with :func:`_field`)."""
    return [f for f in dataclasses.fields(cls) if "check" in f.metadata]


class _Record:
    """The JSON mapping every record shares: see the module docstring for its rules."""

    KEY: ClassVar[str] = "manifest"  # the record's key in the manifest, for messages
    EXPECTED: ClassVar[str] = "an object"  # what the record is, in words, for messages
    _KEEPS_ORDER: ClassVar[bool] = False  # a ``written_order`` field keeps the keys' order

    @classmethod
    def from_dict(cls: type[R], values: Any, *, where: str = "manifest") -> R:
        """Validate a JSON object into the record.

        Raises:
            EdgesmithError: naming ``where``, the dotted key and the value it refuses.
        """
        try:
            return cls._decode(values, cls.KEY)
        except _Invalid as exc:
            raise EdgesmithError(f"{where}: {exc.message}") from None

    @classmethod
    def _decode(cls: type[R], values: Any, path: str) -> R:
        if not isinstance(values, dict):
            raise _bad(path, cls.EXPECTED, values)
        fields = _fields(cls)
        names = {f.name for f in fields}
        unknown = [k for k in values if k not in names]
        if unknown:
            raise _unknown(f"{path}.{unknown[0]}")
        missing = [f.name for f in fields if f.metadata["required"] and f.name not in values]
        if missing:
            raise _Invalid(f"{path} lacks required key(s): {', '.join(missing)}")
        kwargs = {}
        for f in fields:
            if f.name not in values:
                continue
            value = values[f.name]
            if value is None and not f.metadata["required"]:
                kwargs[f.name] = None
                continue
            kwargs[f.name] = f.metadata["check"](value, f"{path}.{f.name}")
        if cls._KEEPS_ORDER:
            kwargs["written_order"] = tuple(values)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, as written in ``manifest.json``."""
        out = {}
        fields = {f.name: f for f in _fields(type(self))}
        first = getattr(self, "written_order", ()) if self._KEEPS_ORDER else ()
        for name in [*(n for n in first if n in fields), *(n for n in fields if n not in first)]:
            f = fields[name]
            value = getattr(self, f.name)
            if value is None and not (f.metadata["required"] or self._keeps_null(f)):
                continue
            out[f.name] = json_ready(value)
        return out

    def _keeps_null(self, field: dataclasses.Field) -> bool:
        keep = field.metadata["keep_null"]
        return keep if isinstance(keep, bool) else getattr(self, keep) is not None


@dataclasses.dataclass(frozen=True, kw_only=True)
class TensorQuantization(_Record):
    """An integer tensor's affine mapping: ``real = scale * (q - zero_point)``.

    Written for the input of an integer file so that a runtime (or firmware) quantises raw
    pixels the way the converter expects.
    """

    KEY = "input.quantization"
    scale: float = _field(_positive_finite, required=True, doc="real value of one integer step")
    zero_point: int = _field(_zero_point, required=True, doc="the integer that stands for 0.0")


@dataclasses.dataclass(frozen=True, kw_only=True)
class InputRecord(_Record):
    """What the model takes: the one record a caller needs to feed it raw pixels.

    ``shape`` is per image, without the batch dimension. Keras artifacts hold float models
    (``dtype`` float32, ``quantization`` null); exported integer files record the input
    tensor's dtype and quantisation, and whether normalisation is folded into the file.
    """

    KEY = "input"
    EXPECTED = "an object (shape, dtype, normalization)"
    shape: tuple[int, ...] = _field(_shape, required=True, doc="(H, W, C) of one image")
    layout: str | None = _field(_string, doc="axis order of the batch: NHWC")
    dtype: str | None = _field(_string, doc="the input tensor's element type")
    normalization: Normalization | None = _field(
        _normalization, doc="how raw pixels become the model's input (see Normalization)"
    )
    raw_input: bool | None = _field(
        _boolean, doc="exported files only: normalisation is inside the file, feed raw pixels"
    )
    quantization: TensorQuantization | None = _field(
        _record(TensorQuantization), keep_null=True, doc="null for a float input"
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class OutputRecord(_Record):
    """What the model outputs, so that readers neither guess softmax nor the class count."""

    KEY = "output"
    kind: str = _field(
        _one_of(*OUTPUT_KINDS), required=True, doc="probabilities (softmax inside) or logits"
    )
    shape: tuple[int, ...] | None = _field(_shape, doc="per image: [num_classes]")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetRecord(_Record):
    """The data the model was trained or evaluated on, so a later stage can load the same."""

    KEY = "dataset"
    spec: str = _field(_string, required=True, doc="the --data spec (digits, npz:..., ...)")
    fingerprint: str | None = _field(_string, doc="sha256 of the loaded arrays")
    num_train: int | None = _field(_count, doc="training images")
    num_eval: int | None = _field(_count, doc="evaluation images")
    input_shape: tuple[int, ...] | None = _field(_shape, doc="(H, W, C) of the images")
    num_classes: int | None = _field(_count, doc="number of classes")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EmulatedParity(_Record):
    """Export ``--check-on``: the file's parity check run again on an emulated CPU.

    The same rule as the native check (``edgesmith.export.parity``), against the same source
    outputs, on the same eval images; ``agreement_native`` says how far the target's kernels
    moved the file's own top-1 answers. Latency is not measured: an emulator's is not the
    device's.
    """

    KEY = "metrics.emulated"
    target: str = _field(_string, required=True, doc="the emulated CPU (aarch64, x86-64-avx2)")
    emulator: str = _field(_string, required=True, doc="qemu's version and CPU model")
    runtime: str | None = _field(_string, doc="the runtime and provider that ran it there")
    accuracy: float = _field(_number, required=True, doc="top-1 accuracy on the target")
    num_eval: int = _field(_count, required=True, doc="the images it is over")
    agreement: float = _field(_number, required=True, doc="top-1 agreement with the source")
    agreement_native: float = _field(
        _number, required=True, doc="top-1 agreement with the native file's outputs"
    )
    max_abs_diff: float | None = _field(_number, doc="largest output difference to the source")
    max_abs_diff_native: float | None = _field(_number, doc="the same to the native file")
    parity: str = _field(_one_of("pass", "fail"), required=True, doc="the parity verdict there")
    accuracy_test: dict[str, Any] | None = _field(
        _json_object, doc="quantised files: the accuracy-drop test's record (McNemar, margin)"
    )
    parity_failures: tuple[str, ...] | None = _field(_strings, doc="which bounds were missed")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Metrics(_Record):
    """What was measured on the artifact. Every stage fills the part it measures.

    ``accuracy`` is a fraction of ``num_eval`` images; ``*_per_layer`` maps are keyed by layer
    name. Fields no stage measured stay None and are not written.
    """

    KEY = "metrics"
    _KEEPS_ORDER = True
    accuracy: float | None = _field(_number, doc="top-1 accuracy on num_eval images")
    num_eval: int | None = _field(_count, doc="the images the accuracy is over")
    per_class_accuracy: dict[str, float] | None = _field(
        _map_of(_number, "an object of numbers"), doc="accuracy per label"
    )
    # export: the parity check of the file against its Keras source (edgesmith.export.parity)
    source_accuracy_eval: float | None = _field(_number, doc="source's accuracy, same images")
    agreement: float | None = _field(_number, doc="top-1 agreement with the source")
    max_abs_diff: float | None = _field(_number, doc="largest output difference to the source")
    mean_abs_diff: float | None = _field(_number, doc="mean output difference to the source")
    parity: str | None = _field(_one_of("pass", "fail"), doc="the parity verdict")
    tolerance: dict[str, Any] | None = _field(_json_object, doc="the bounds the check used")
    accuracy_test: dict[str, Any] | None = _field(
        _json_object, doc="quantised files: the accuracy-drop test's record (McNemar, margin)"
    )
    parity_failures: tuple[str, ...] | None = _field(_strings, doc="which bounds were missed")
    parity_runner: str | None = _field(_string, doc="the runtime that checked it (tflm)")
    emulated: tuple[EmulatedParity, ...] | None = _field(
        _list_of(_record(EmulatedParity), "a list of emulated parity records"),
        doc="export --check-on: the parity check on each emulated CPU",
    )
    # file sizes (export, mixed int8)
    size_bytes: int | None = _field(_count, doc="the model file's bytes")
    gzip_bytes: int | None = _field(_count, doc="gzip -9 of the file: what compression keeps")
    # the model
    params: int | None = _field(_count, doc="parameters of the deployed model")
    macs: int | None = _field(_count, doc="multiply-accumulates per image")
    # against the parent or a teacher
    source_accuracy: float | None = _field(_number, doc="the parent's recorded accuracy")
    accuracy_drop: float | None = _field(_number, doc="points lost against the parent")
    teacher_accuracy: float | None = _field(_number, doc="distillation: the teacher's")
    # training
    train_seconds: float | None = _field(_number, doc="summed epoch time")
    wall_seconds_this_session: float | None = _field(_number, doc="wall time of this run")
    images_per_second: float | None = _field(_number, doc="mean training throughput")
    epochs: int | None = _field(_count, doc="epochs trained")
    # sparsity (prune, cluster, qat)
    sparsity: float | None = _field(_number, doc="fraction of exact zeros in the kernels")
    sparsity_per_layer: dict[str, float] | None = _field(
        _map_of(_number, "an object of numbers"), doc="the same per layer"
    )
    kernel_weights: int | None = _field(_count, doc="the weights sparsity is over")
    sparsity_pruned_layers: float | None = _field(_number, doc="zeros in the pruned layers")
    sparsity_source: float | None = _field(_number, doc="qat: the parent's sparsity")
    sparsity_drift_per_layer: dict[str, float] | None = _field(
        _map_of(_number, "an object of numbers"), doc="qat: sparsity change per layer"
    )
    pattern_2x4: bool | None = _field(_boolean, doc="2:4 pruning: the pattern holds")
    pattern_2x4_per_layer: dict[str, bool] | None = _field(
        _map_of(_boolean, "an object of booleans"), doc="the same per layer"
    )
    # clustering
    clusters: int | None = _field(_count, doc="distinct values asked per layer")
    unique_values_per_layer: dict[str, int] | None = _field(
        _map_of(_count, "an object of counts"), doc="distinct values found per layer"
    )
    # qat
    params_with_quantizers: int | None = _field(_count, doc="params incl. quantiser ranges")
    # channel pruning
    params_source: int | None = _field(_count, doc="the parent's parameters")
    macs_source: int | None = _field(_count, doc="the parent's MACs")
    mac_reduction: float | None = _field(_number, doc="fraction of MACs removed")
    param_reduction: float | None = _field(_number, doc="fraction of parameters removed")
    channels: dict[str, Any] | None = _field(_json_object, doc="group: [before, after] width")
    # mixed int8/float (autotune)
    float_layers: tuple[str, ...] | None = _field(_strings, doc="layers kept float")
    written_order: tuple[str, ...] = dataclasses.field(default=(), compare=False, repr=False)
    """The keys in the order a writer (or the file) gave them: each stage measures in its own
    order, and ``to_dict`` keeps it so that the JSON reads as it always has."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class InputPipeline(_Record):
    """Train: where the input pipeline normalised and augmented, and how batches travelled.

    Recorded because it changes throughput (and, with device augmentation, the random stream),
    not the model.
    """

    KEY = "input_pipeline"
    augment_on: str = _field(_string, required=True, doc="host (tf.data) or device (the step)")
    augment_device: str | None = _field(_string, doc="CPU or GPU: where it really ran")
    prefetch_to_device: bool | None = _field(_boolean, doc="batches reached the GPU ahead")
    prefetch_target: str | None = _field(
        _string, keep_null="prefetch_to_device", doc="the device tf.data prefetched to"
    )
    fetch: str | None = _field(_string, doc="how batches reached the step, in words")
    feed: str | None = _field(_string, doc="keras3: the dtype batches are fed as (uint8)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Training(_Record):
    """Keras 3 training: the framework and devices, which decide speed and numerics."""

    KEY = "training"
    keras: str = _field(_string, required=True, doc="the Keras version")
    backend: str = _field(_string, required=True, doc="jax, torch or tensorflow")
    device_kind: str = _field(_string, required=True, doc="cpu or gpu")
    devices: tuple[str, ...] = _field(_strings, required=True, doc="the devices used")
    precision: str = _field(_string, required=True, doc="float32 or mixed precision policy")
    data_parallel: bool = _field(_boolean, required=True, doc="batches split across devices")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Distillation(_Record):
    """Distill: the teacher the student learned from, and how soft labels were mixed."""

    KEY = "distillation"
    teacher: str = _field(_string, required=True, doc="the teacher artifact's id")
    teacher_path: str = _field(_string, required=True, doc="where it was read from")
    student: str = _field(_string, required=True, doc="zoo model name or the student's path")
    alpha: float = _field(_number, required=True, doc="weight of the hard-label loss")
    temperature: float = _field(_number, required=True, doc="softmax temperature")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Clustering(_Record):
    """Cluster: which layers share a few values and which were left as they were."""

    KEY = "clustering"
    clustered_layers: tuple[str, ...] = _field(_strings, required=True, doc="layer names")
    left_alone: dict[str, str] = _field(
        _map_of(_string, "an object of strings"), required=True, doc="layer: why not"
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Quantization(_Record):
    """QAT: the fake quantisation the model was trained with, so export can match it."""

    KEY = "quantization"
    scheme: str = _field(_string, required=True, doc="tfmot's scheme, in words")
    weights: str = _field(_string, required=True, doc="how weights are quantised")
    activations: str = _field(_string, required=True, doc="how activations are quantised")
    float_layers: dict[str, str] = _field(
        _map_of(_string, "an object of strings"), required=True, doc="layer: why it stays float"
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class PruningSteps(_Record):
    """Prune: the mask-update schedule, in optimizer steps."""

    KEY = "pruning.steps"
    begin_step: int = _field(_count, required=True, doc="first mask update")
    end_step: int = _field(_count, required=True, doc="last mask update (target reached)")
    frequency: int = _field(_count, required=True, doc="steps between updates")
    total_steps: int = _field(_count, required=True, doc="steps of the fine-tuning")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pruning(_Record):
    """Prune (magnitude or 2:4): what was pruned to which sparsity, and on what schedule."""

    KEY = "pruning"
    structure: str = _field(_string, required=True, doc="unstructured or 2:4")
    target_sparsity: float = _field(_number, required=True, doc="the asked sparsity")
    sparsity_scope: str = _field(_string, required=True, doc="model or layer")
    layer_target_sparsity: float = _field(_number, required=True, doc="per pruned layer")
    schedule: str = _field(_string, required=True, doc="constant or polynomial")
    steps: PruningSteps = _field(_record(PruningSteps), required=True, doc="the schedule")
    pruned_layers: tuple[str, ...] = _field(_strings, required=True, doc="layer names")
    left_dense: dict[str, str] = _field(
        _map_of(_string, "an object of strings"), required=True, doc="layer: why not"
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class WidthSearch(_Record):
    """Channel pruning with a latency target: what the width search reached, and how."""

    KEY = "pruning.width_search"
    max_latency_ratio: float = _field(_number, required=True, doc="the asked latency ratio")
    latency_ratio: float = _field(_number, required=True, doc="the reached one (int8)")
    mac_ratio: float = _field(_number, required=True, doc="MACs against the source")
    param_ratio: float | None = _field(_number, keep_null=True, doc="parameters, likewise")
    threads: int | None = _field(_count, keep_null=True, doc="runtime threads while timing")
    seconds: float = _field(_number, required=True, doc="time the search took")
    steps: tuple[dict[str, Any], ...] = _field(_objects, required=True, doc="one per step")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChannelPruning(_Record):
    """Channel pruning: the groups shrunk together and the widths they got.

    ``widths`` is the ``--widths`` flag that rebuilds the same model without a search.
    """

    KEY = "pruning"
    structure: str = _field(_one_of("channels"), required=True, doc="channels")
    channel_fraction: float | None = _field(
        _number, keep_null=True, doc="fraction removed per group (null: widths searched)"
    )
    ranking: str = _field(_string, required=True, doc="how channels were ranked")
    groups: dict[str, Any] = _field(
        _json_object, required=True, doc="group: producers, members, consumers"
    )
    kept_whole: dict[str, str] = _field(
        _map_of(_string, "an object of strings"), required=True, doc="group or layer: why"
    )
    flattened: tuple[str, ...] = _field(_strings, required=True, doc="nested models flattened")
    widths: str = _field(_string, required=True, doc="the widths, as a --widths flag")
    width_search: WidthSearch | None = _field(_record(WidthSearch), doc="latency search")


def _pruning(value: Any, key: str) -> Pruning | ChannelPruning:
    if isinstance(value, dict) and value.get("structure") == "channels":
        return ChannelPruning._decode(value, key)
    return Pruning._decode(value, key)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CArray(_Record):
    """Export ``--c-array``: the C source and header holding the file for firmware."""

    KEY = "c_array"
    source: str = _field(_string, required=True, doc="the .cc file")
    header: str = _field(_string, required=True, doc="the .h file")
    symbol: str | None = _field(_string, doc="the array's name")


@dataclasses.dataclass(frozen=True, kw_only=True)
class VelaConfig(_Record):
    """What Vela compiled for (``edgesmith.export.vela.VelaConfig``)."""

    KEY = "target.vela.config"
    accelerator: str = _field(_string, required=True, doc="Vela's --accelerator-config")
    system_config: str | None = _field(_string, keep_null=True, doc="null: Vela's default")
    memory_mode: str | None = _field(_string, keep_null=True, doc="null: Vela's default")
    clock_mhz: float | None = _field(_number, keep_null=True, doc="null: the config's clock")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Vela(_Record):
    """An Ethos-U target: Vela's compiled file and its estimates (not measured on the NPU)."""

    KEY = "target.vela"
    label: str = _field(_string, required=True, doc="what the numbers are, in words")
    note: str = _field(_string, required=True, doc="how far to trust them")
    config: VelaConfig = _field(_record(VelaConfig), required=True, doc="what it compiled for")
    clock_mhz: float = _field(_number, required=True, doc="the NPU clock of the estimate")
    npu_ops: int = _field(_count, required=True, doc="ops on the NPU")
    cpu_ops: int = _field(_count, required=True, doc="ops left to the CPU")
    cpu_fallback: dict[str, int] = _field(
        _map_of(_count, "an object of counts"), required=True, doc="op: count on the CPU"
    )
    npu_fraction: float = _field(_number, required=True, doc="npu_ops / all ops")
    cycles: int = _field(_count, required=True, doc="estimated NPU cycles")
    inference_ms: float = _field(_number, required=True, doc="estimated latency")
    sram_kb: float = _field(_number, required=True, doc="SRAM used")
    flash_kb: float = _field(_number, required=True, doc="flash used")
    dram_kb: float = _field(_number, required=True, doc="DRAM used")
    vela_version: str | None = _field(_string, keep_null=True, doc="the Vela that compiled")
    file: str = _field(_string, required=True, doc="the compiled file")
    file_bytes: int = _field(_count, required=True, doc="its size")
    c_array: CArray | None = _field(_record(CArray), doc="the compiled file as C")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Firmware(_Record):
    """Export ``--target cortex-m55``: the file compiled into a firmware and run in QEMU.

    TFLite Micro + CMSIS-NN, linked for the board and fed the first ``num_images`` eval images
    by semihosting. Agreement is with LiteRT on the same int8 inputs: CMSIS-NN rounds some ops
    its own way, so it is high but not 1.0. Instructions are QEMU's retired-instruction count
    (``-icount shift=0``): deterministic, comparable between models, and not time.
    """

    KEY = "target.firmware"
    board: str = _field(_string, required=True, doc="the QEMU machine (mps3-an547)")
    emulator: str = _field(_string, required=True, doc="qemu-system-arm's version and flags")
    num_images: int = _field(_count, required=True, doc="eval images the firmware ran")
    accuracy: float | None = _field(_number, keep_null=True, doc="the firmware's top-1 accuracy")
    litert_accuracy: float | None = _field(
        _number, keep_null=True, doc="LiteRT's on the same images"
    )
    agreement: float = _field(_number, required=True, doc="top-1 agreement with LiteRT")
    verdict: str = _field(_one_of("pass", "fail"), required=True, doc="the firmware check")
    accuracy_test: dict[str, Any] | None = _field(
        _json_object, doc="firmware vs LiteRT accuracy: the parity rule (McNemar with margin)"
    )
    failures: tuple[str, ...] | None = _field(_strings, doc="why the check failed")
    note: str | None = _field(_string, doc="what the agreement means, in words")
    flash_kb: float = _field(_number, required=True, doc="text + rodata + data's load image")
    ram_kb: float = _field(_number, required=True, doc="data + bss (the arena is in bss)")
    arena_bytes: int = _field(_count, required=True, doc="the arena linked in")
    arena_used_bytes: int = _field(_count, required=True, doc="what TFLM used on the target")
    instructions_per_inference: int = _field(
        _count, required=True, doc="median retired instructions per inference"
    )
    instructions_label: str = _field(_string, required=True, doc="what the count is, in words")
    instructions_deterministic: bool = _field(
        _boolean, required=True, doc="a second run counted the same"
    )
    versions: dict[str, str] = _field(
        _map_of(_string, "an object of version strings"),
        required=True,
        doc="toolchain, TFLM, CMSIS-NN, CMSIS commits",
    )
    library_cached: bool | None = _field(_boolean, doc="TFLM's library came from the cache")
    library_build_seconds: float | None = _field(_number, doc="its build time (0: cached)")
    emulation_seconds: float | None = _field(_number, doc="wall time of the QEMU run")
    files: tuple[str, ...] | None = _field(_strings, doc="the firmware sources and ELF kept")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target(_Record):
    """Export ``--target``: the check the file passed for a device class, and its budget.

    ``tflm`` records flash and the activation arena (measured by TFLM where installed, else
    estimated: ``arena_source`` says which); an Ethos-U target records Vela's compilation; a
    Cortex-M target (``cortex-m55``) the firmware run in QEMU (:class:`Firmware`).
    """

    KEY = "target"
    target: str = _field(_string, required=True, doc="int8-only, tflm or ethos-u...")
    verdict: str = _field(_string, required=True, doc="pass (a failing file is not written)")
    flash_bytes: int | None = _field(_count, doc="tflm: the file's flash")
    arena_bytes: int | None = _field(_count, doc="tflm: the arena TFLM allocated")
    arena_head_bytes: int | None = _field(
        _count, keep_null="arena_bytes", doc="its planned activation buffers"
    )
    arena_tail_bytes: int | None = _field(
        _count, keep_null="arena_bytes", doc="its persistent tensor and op data"
    )
    arena_bytes_estimate: int | None = _field(_count, doc="without TFLM: the greedy plan")
    arena_source: str | None = _field(_one_of("measured", "estimate"), doc="which arena")
    arena_note: str | None = _field(_string, doc="what the arena number covers")
    arena_bytes_former_estimate: int | None = _field(_count, doc="the estimate, for comparison")
    vela: Vela | None = _field(_record(Vela), doc="Ethos-U: the Vela compilation")
    firmware: Firmware | None = _field(_record(Firmware), doc="cortex-m55: the QEMU firmware run")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sparse(_Record):
    """Export ``--sparse``: how many tensors were encoded sparse and what runs them."""

    KEY = "sparse"
    encoded_tensors: int = _field(_count, required=True, doc="tensors stored sparse")
    xnnpack: bool = _field(_boolean, required=True, doc="whether XNNPACK may run the file")
    runtime: str = _field(_string, required=True, doc="what a runtime needs, in words")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ops(_Record):
    """Export: the file's op report (``edgesmith.export.ops``), capped for the manifest."""

    KEY = "ops"
    format: str = _field(_string, required=True, doc="tflite or onnx")
    opset: int | None = _field(_count, doc="onnx: the opset")
    operators: dict[str, int] = _field(
        _map_of(_count, "an object of counts"), required=True, doc="op: count"
    )
    op_dtypes: dict[str, Any] = _field(_json_object, required=True, doc="op: dtypes it touches")
    tensor_dtypes: dict[str, int] = _field(
        _map_of(_count, "an object of counts"), required=True, doc="dtype: tensors"
    )
    float_ops: tuple[dict[str, Any], ...] = _field(
        _objects, required=True, doc="the first float ops in a quantised file"
    )
    sparse_tensors: int | None = _field(_count, doc="tflite: tensors stored sparse")
    subgraphs: int | None = _field(_count, doc="tflite: subgraphs")
    io: dict[str, Any] = _field(_json_object, required=True, doc="input and output tensors")
    num_float_ops: int | None = _field(_count, doc="all float ops (float_ops is capped)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Quantizer(_Record):
    """Export's LiteRT Quantizer formats: the recipe applied to the float file, and its check.

    The recipe is kept whole, so the file can be made again from the float .tflite with the
    same ``ai-edge-quantizer`` release; ``validation`` is the quantizer's own tensor-by-tensor
    comparison with the float file (``edgesmith.export.litert_quantizer.summarise``).
    """

    KEY = "quantizer"
    backend: str = _field(_one_of("litert"), required=True, doc="which quantizer: litert")
    package: str = _field(_string, required=True, doc="the quantizer package and its version")
    recipe_name: str = _field(_string, required=True, doc="the quantizer's recipe name, or file")
    recipe_source: str = _field(_string, required=True, doc="builtin, or the recipe file")
    recipe_sha256: str | None = _field(_string, doc="the recipe file's sha256")
    recipe: tuple[dict[str, Any], ...] = _field(
        _objects, required=True, doc="the rules, as the quantizer loaded them"
    )
    promoted: tuple[dict[str, Any], ...] | None = _field(
        _objects, doc="mixed recipe: the layers given 16-bit activations, and why"
    )
    calibration_samples: int = _field(
        _count, required=True, doc="inputs the activation ranges came from (0: none needed)"
    )
    calibration_rule: str | None = _field(
        _one_of("min-max", "moving-average"), doc="how their ranges were merged"
    )
    validation: dict[str, Any] | None = _field(
        _json_object, doc="the quantizer's validate(): per-tensor error against the float file"
    )


# ---------------------------------------------------------------------------------------------
# The manifest

_SECTIONS: dict[str, Check] = {
    "output": _record(OutputRecord),
    "c_array": _record(CArray),
    "target": _record(Target),
    "sparse": _record(Sparse),
    "raw_input_fold": _string,
    "ops": _record(Ops),
    "quantizer": _record(Quantizer),
    "input_pipeline": _record(InputPipeline),
    "training": _record(Training),
    "history": _objects,
    "trusted_model_code": _boolean,
    "distillation": _record(Distillation),
    "clustering": _record(Clustering),
    "qat": _boolean,
    "quantization": _record(Quantization),
    "pruning": _pruning,
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Manifest:
    """An artifact's ``manifest.json``: the core record every artifact has, then its sections.

    Attributes:
        id: content address (sha256 over the model files' names and hashes).
        stage: ``train``, ``compress`` or ``export``.
        technique: what produced it (``resnet8``, ``import``, ``prune``, ``tflite-int8``...).
        format: ``keras``, ``tflite`` or ``onnx``.
        model_file: the main model file (or SavedModel folder), one of ``files``.
        files: every hashed file: relative name -> sha256.
        config: the stage's fully resolved settings, defaults included (each stage's own
            keys: open by design, it is what reproduces the run).
        input: what the model takes (:class:`InputRecord`).
        labels: class names in output order.
        dataset: the data it was trained or evaluated on.
        metrics: what was measured.
        tool_versions: package versions that made it.
        created: ISO 8601 UTC timestamp.
        parent: id of the artifact it came from; None for a trained or imported one.
        schema_version: the manifest format (1).
        output: what it outputs (every current writer records it; very old artifacts lack it).
        c_array: export ``--c-array``: the file as C source.
        target: export ``--target``: the device check and its budget.
        sparse: export ``--sparse``: the sparse encoding.
        raw_input_fold: export ``--raw-input``: how normalisation was folded in (``affine``,
            ``kernel:<layer>``).
        ops: export: the file's op report.
        quantizer: export's LiteRT Quantizer formats: the recipe and the quantizer's check.
        input_pipeline: train: where augmentation ran.
        training: Keras 3 train: framework and devices.
        history: train and compress: one record per epoch (loss, accuracies, seconds...).
        trusted_model_code: train/import: the user accepted model code (informative only: a
            manifest never grants permission to run code).
        distillation: distill: the teacher.
        clustering: cluster: the layers clustered.
        qat: qat: the model holds fake-quantisation layers.
        quantization: qat: the scheme trained with.
        pruning: prune (:class:`Pruning`) or prune-channels (:class:`ChannelPruning`).
    """

    id: str
    stage: str
    technique: str
    format: str
    model_file: str
    files: dict[str, str]
    config: dict[str, Any]
    input: InputRecord
    labels: tuple[str, ...]
    dataset: DatasetRecord
    metrics: Metrics
    tool_versions: dict[str, str]
    created: str
    parent: str | None = None
    schema_version: int = SCHEMA_VERSION
    output: OutputRecord | None = None
    c_array: CArray | None = None
    target: Target | None = None
    sparse: Sparse | None = None
    raw_input_fold: str | None = None
    ops: Ops | None = None
    quantizer: Quantizer | None = None
    input_pipeline: InputPipeline | None = None
    training: Training | None = None
    history: tuple[dict[str, Any], ...] | None = None
    trusted_model_code: bool | None = None
    distillation: Distillation | None = None
    clustering: Clustering | None = None
    qat: bool | None = None
    quantization: Quantization | None = None
    pruning: Pruning | ChannelPruning | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, keys in the order edgesmith has always written them."""
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "id": self.id,
            "parent": self.parent,
            "stage": self.stage,
            "technique": self.technique,
            "format": self.format,
            "model_file": self.model_file,
            "files": dict(self.files),
            "config": json_ready(self.config),
            "input": self.input.to_dict(),
            "labels": list(self.labels),
            "dataset": self.dataset.to_dict(),
            "metrics": self.metrics.to_dict(),
            "tool_versions": dict(self.tool_versions),
            "created": self.created,
        }
        for name in _SECTIONS:
            value = getattr(self, name)
            if value is not None:
                out[name] = json_ready(value)
        return out

    @classmethod
    def from_dict(cls, document: Any, *, where: str = "manifest") -> Manifest:
        """Validate a parsed ``manifest.json``.

        Raises:
            EdgesmithError: one line naming ``where``, the key and the value: not a manifest,
                a newer schema, a missing key, a value of the wrong type, an unknown key, a file
                name that points outside the folder, a ``model_file`` that is not hashed.
        """
        try:
            return cls._decode(document, where)
        except _Invalid as exc:
            raise EdgesmithError(f"{where}: {exc.message}") from None

    @classmethod
    def _decode(cls, document: Any, where: str) -> Manifest:
        from edgesmith import __version__

        if not isinstance(document, dict) or "schema_version" not in document:
            raise EdgesmithError(f"{where} is not an edgesmith manifest: it has no schema_version")
        version = document["schema_version"]
        if not _is_int(version) or version < 1:
            raise EdgesmithError(
                f"{where}: schema_version must be a positive integer. Received: {version!r}"
            )
        if version > SCHEMA_VERSION:
            raise EdgesmithError(
                f"{where} has schema_version {version}, written by a newer edgesmith; this one "
                f"({__version__}) reads up to {SCHEMA_VERSION}: pip install -U edgesmith"
            )
        missing = [key for key in REQUIRED_KEYS if key not in document]
        if missing:
            raise EdgesmithError(f"{where} lacks required key(s): {', '.join(missing)}")
        unknown = [k for k in document if k not in REQUIRED_KEYS and k not in _SECTIONS]
        if unknown:
            raise _unknown(unknown[0])
        d = document
        if d["format"] not in FORMATS:
            raise _bad("format", f"one of {FORMATS}", d["format"])
        for key, expected in _TOP_LEVEL_STRINGS:
            if not isinstance(d[key], str):
                raise _bad(key, expected, d[key])
        if d["stage"] not in STAGES:
            raise _bad("stage", f"one of {STAGES}", d["stage"])
        if d["parent"] is not None and not isinstance(d["parent"], str):
            raise _bad("parent", "an artifact id or null", d["parent"])
        for key, expected in _TOP_LEVEL_OBJECTS:
            if not isinstance(d[key], dict):
                raise _bad(key, expected, d[key])
        if not isinstance(d["labels"], list) or len(d["labels"]) > MAX_LABELS:
            raise _bad("labels", f"a list of at most {MAX_LABELS} class names", d["labels"])
        bad_labels = [
            label
            for label in d["labels"]
            if not isinstance(label, str) or len(label) > MAX_LABEL_CHARS
        ]
        if bad_labels:
            raise _bad("labels", "a list of class names", bad_labels[0])
        files = _files(d["files"], where)
        model_file = d["model_file"]
        check_member_name(model_file, where=where, key="model_file")
        if not any(name == model_file or name.startswith(model_file + "/") for name in files):
            raise _Invalid(
                f"model_file {model_file!r} is not among the hashed files; a manifest may "
                "only point at files it lists with their sha256"
            )
        versions = _map_of(_string, "an object of version strings")(
            d["tool_versions"], "tool_versions"
        )
        sections = {}
        for name, check in _SECTIONS.items():
            if d.get(name) is not None:
                sections[name] = check(d[name], name)
        return cls(
            schema_version=version,
            id=d["id"],
            parent=d["parent"],
            stage=d["stage"],
            technique=d["technique"],
            format=d["format"],
            model_file=model_file,
            files=files,
            config=dict(d["config"]),
            input=InputRecord._decode(d["input"], "input"),
            labels=tuple(d["labels"]),
            dataset=DatasetRecord._decode(d["dataset"], "dataset"),
            metrics=Metrics._decode(d["metrics"], "metrics"),
            tool_versions=versions,
            created=d["created"],
            **sections,
        )


_TOP_LEVEL_STRINGS = (
    ("id", "a string"),
    ("stage", "a string"),
    ("technique", "a string"),
    ("model_file", "a file name"),
    ("created", "a timestamp string"),
)
_TOP_LEVEL_OBJECTS = (
    ("files", "an object mapping names to sha256 digests"),
    ("config", "an object"),
    ("input", InputRecord.EXPECTED),
    ("dataset", "an object"),
    ("metrics", "an object"),
    ("tool_versions", "an object"),
)


def _files(files: dict[str, Any], where: str) -> dict[str, str]:
    for name, digest in files.items():
        check_member_name(name, where=where)
        if not (isinstance(digest, str) and is_sha256(digest)):
            raise _bad(f"files[{name!r}]", "a sha256 hex digest", digest)
    return dict(files)


def is_sha256(text: str) -> bool:
    """Whether ``text`` is a lower-case hex sha256 digest."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def check_member_name(name: Any, *, where: str = "manifest", key: str = "files") -> str:
    """Refuse a file name that could reach outside its artifact folder.

    A name must be a relative POSIX path, normalised (no ``.``, ``..`` or empty parts), without
    backslashes or NUL bytes, and not the manifest itself.

    Raises:
        EdgesmithError: naming the key and the name.
    """
    if not isinstance(name, str) or not name:
        raise EdgesmithError(f"{where}: {key} names must be non-empty strings. Received: {name!r}")
    parts = name.split("/")
    if (
        name.startswith("/")
        or "\\" in name
        or "\0" in name
        or any(part in ("", ".", "..") for part in parts)
        or PurePosixPath(name).is_absolute()
        or (len(parts[0]) >= 2 and parts[0][1] == ":")  # C:... on Windows
        or parts[0] == MANIFEST_NAME
    ):
        raise EdgesmithError(
            f"{where}: {key} name {_short(name)} must be a relative, normalised path inside the "
            "artifact folder"
        )
    return name


def field_docs(record: type) -> Mapping[str, str]:
    """``{field: why it is recorded}`` of a record class (for documentation and tests)."""
    return {f.name: f.metadata["doc"] for f in _fields(record)}
