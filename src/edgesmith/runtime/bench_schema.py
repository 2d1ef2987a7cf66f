"""The bench document as a typed, versioned schema, written and validated by the same records.

``edgesmith bench --json-out FILE`` writes a JSON document; ``edgesmith check`` reads it back as
a baseline, and ``edgesmith build`` and the width search read it after a bench on a device. Every
key the product writes is a field of one frozen dataclass here, declared once with the reader
that validates it; each record's ``to_dict()`` writes its fields in declaration order (the keys
edgesmith has always written) and ``from_dict()`` reads them back through those readers.
:func:`benchmark` returns a :class:`BenchDocument` and readers use its attributes, never the
JSON's keys.

    BenchDocument   schema, schema_version, created, data, settings, machine, results, store,
                    device (a DeviceProfile), host, emulation
    BenchSettings   threads, batch, provider, xnnpack, foreign_normalization, affinity,
                    eval_batch, timing (a TimingPlan)
    Machine         cpu, isa, cores, usable_cores, os, arch, python, runtime_versions
    BenchResult     path, model_file, sha256, format, runtime, provider, threads, batch, sizes
                    (size_bytes, gzip_bytes), timing (load_ms, first_inference_ms, latency_ms,
                    rounds, throughput_ips, macs, gmacs_per_s), memory (peak_rss_mb,
                    load_rss_mb), accuracy (accuracy, num_eval, per_class, confusion), input,
                    labels, metadata, notes, machine, tflm, instructions, budgets
    Latency         latency_ms: p50, p90, p99, mean, min, max, runs, std
    ModelInput      input: shape, layout, dtype, normalization, raw_input, quantization
    TflmRecord      tflm: arena_bytes, arena_head_bytes, arena_tail_bytes, arena_source,
                    latency_note
    BudgetVerdict   budgets.<name>: limit, value, ok
    Instructions    instructions: per_inference, runs, overhead, tool, scope
    Emulation       emulation: target, emulator, note

A document read from disk (or from another machine over SSH) is input like any other: it may be
stale, hand-edited or hostile. :func:`parse_document` turns it into these records or raises one
:class:`EdgesmithError` line naming the key and the value, so that nothing downstream trusts a
number nobody checked: latencies must be finite, positive and ordered (min <= p50 <= p90 <= p99
<= max) and below an hour; accuracy is a fraction in [0, 1] backed by a positive image count; a
sha256 is 64 hex digits; the store folder is one plain name beside the JSON file. Keys this
edgesmith does not know are ignored (a newer edgesmith on a device may add some); keys it knows
are never passed through unchecked.

Version history: 1, the first bench document; 2 adds ``store`` (the content-addressed copies of
the benched model files, ``<store>/<sha256>.<format>`` beside the JSON) and this validation.
Version 1 documents are still read (they have no store). Version 2 documents may carry the
optional ``instructions`` (per result) and ``emulation`` (per document) records; an edgesmith
that predates them ignores them, as it ignores every key it does not know.

Units: ``latency_ms`` in milliseconds; ``accuracy`` is the fraction of eval images classified
correctly (0..1), as in every manifest; every accuracy *tolerance* in edgesmith is in
percentage points.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from edgesmith.core.config import json_ready
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import TensorQuantization
from edgesmith.core.normalization import Normalization
from edgesmith.core.profiles import DeviceProfile
from edgesmith.runtime.timing import TimingPlan

SCHEMA = "edgesmith.bench"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
# A latency above an hour per inference is not a measurement of an edge model but a corrupted
# or hostile number (the issue saw 1e9 ms accepted).
MAX_LATENCY_MS = 3_600_000.0
MAX_DOCUMENT_BYTES = 64 * 2**20
LATENCY_KEYS = ("p50", "p90", "p99", "mean", "min", "max")
FORMATS = ("tflite", "onnx")
# Far above any model an edge device runs (ResNet-8 int8: 4.1 M per inference).
MAX_INSTRUCTIONS = 10**15
_SHA256 = re.compile(r"[0-9a-f]{64}")
_STORE = re.compile(r"[A-Za-z0-9._-]+")

R = TypeVar("R", bound="_Record")
Reader = Callable[[object, str], Any]
"""Turns one JSON value into a field's value, or raises one line naming ``where`` (its key)."""


# ---------------------------------------------------------------------------------------------
# Readers: each takes the JSON value and its key in messages, and returns the field's value.


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _refuse(where: str, expected: str, value: object) -> EdgesmithError:
    return EdgesmithError(f"{where} must be {expected}. Received: {_short(value)}")


def _object(value: object, where: str, expected: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse(where, expected, value)
    return value


def _or_null(read: Reader) -> Reader:
    """``read`` for a value that may also be null, which reads as None."""

    @functools.wraps(read)
    def nullable(value: object, where: str, **options: Any) -> Any:
        return None if value is None else read(value, where, **options)

    return nullable


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: object, where: str) -> int:
    if not _whole(value) or value < 1:
        raise _refuse(where, "a whole number >= 1", value)
    return value


_optional_positive_int = _or_null(_positive_int)


def _count(value: object, where: str) -> int:
    if not _whole(value) or value < 0:
        raise _refuse(where, "a whole number >= 0", value)
    return value


@_or_null
def _optional_number(
    value: object, where: str, kind: type = float, low: float = 0.0
) -> int | float:
    whole = kind is int and isinstance(value, int)
    if not _finite(value) or (kind is int and not whole) or value < low:
        what = "a whole number" if kind is int else "a finite number"
        floor = "" if low == -math.inf else f" >= {low:g}"
        raise _refuse(where, f"{what}{floor} or null", value)
    return value if kind is int else float(value)


_optional_count = functools.partial(_optional_number, kind=int)
_optional_signed = functools.partial(_optional_number, low=-math.inf)
_optional_signed_int = functools.partial(_optional_number, kind=int, low=-math.inf)


def _positive_number(value: object, where: str) -> int | float:
    if not _finite(value) or value <= 0:
        raise _refuse(where, "a positive number", value)
    return value


def _milliseconds(value: object, where: str) -> float:
    if not _finite(value) or not 0.0 < value <= MAX_LATENCY_MS:
        raise _refuse(where, f"a finite number of milliseconds in (0, {MAX_LATENCY_MS:g}]", value)
    return float(value)


def _std(value: object, where: str) -> float:
    """The runs' standard deviation; null reads as 0 (a single run)."""
    return _optional_number(value, where) or 0.0


@_or_null
def _fraction(value: object, where: str) -> float:
    if not _finite(value) or not 0.0 <= value <= 1.0:
        raise _refuse(where, "a fraction in [0, 1] or null", value)
    return float(value)


def _instruction_count(value: object, where: str) -> float:
    if not _finite(value) or not 0 < value <= MAX_INSTRUCTIONS:
        raise _refuse(where, f"a number in (0, {MAX_INSTRUCTIONS:.0e}]", value)
    return float(value)


def _boolean(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _refuse(where, "true or false", value)
    return value


@_or_null
def _optional_boolean(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _refuse(where, "true, false or null", value)
    return value


@_or_null
def _optional_str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _refuse(where, "a string or null", value)
    return value


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _refuse(where, "a non-empty string", value)
    return value


def _sha256(value: object, where: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise _refuse(where, "64 lowercase hex digits", value)
    return value


def _format(value: object, where: str) -> str:
    if value not in FORMATS:
        raise _refuse(where, f"one of {', '.join(FORMATS)}", value)
    return value  # type: ignore[return-value]


@_or_null
def _store(value: object, where: str) -> str:
    if not isinstance(value, str) or not _STORE.fullmatch(value) or value in (".", ".."):
        raise _refuse(where, "one folder name beside the JSON file", value)
    return value


@_or_null
def _optional_names(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _refuse(where, "a list of strings", value)
    return tuple(value)


def _notes(value: object, where: str) -> tuple[str, ...]:
    """What a user must know about the numbers; null reads as none."""
    return _optional_names(value, where) or ()


def _sizes(value: object, where: str) -> tuple[int | None, ...]:
    if not isinstance(value, list) or not all(d is None or (_whole(d) and d >= 1) for d in value):
        raise _refuse(where, "a list of sizes >= 1 (or null)", value)
    return tuple(value)


def _versions(value: object, where: str) -> dict[str, str]:
    versions = {} if value is None else value
    if not isinstance(versions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in versions.items()
    ):
        raise _refuse(where, "an object of package: version strings", versions)
    return dict(versions)


@_or_null
def _normalization(record: object, where: str) -> Normalization:
    try:
        return Normalization.from_dict(record)  # type: ignore[arg-type]
    except (EdgesmithError, TypeError, ValueError) as exc:
        raise EdgesmithError(f"{where}: {_one_line(exc)}") from None


@_or_null
def _quantization(record: object, where: str) -> TensorQuantization:
    record = _object(record, where, "an object with scale and zero_point, or null")
    return TensorQuantization(
        scale=_positive_number(record.get("scale"), f"{where}.scale"),
        zero_point=_zero_point(record.get("zero_point"), f"{where}.zero_point"),
    )


def _zero_point(value: object, where: str) -> int:
    if not _whole(value):
        raise _refuse(where, "a whole number", value)
    return value


@_or_null
def _timing(record: object, where: str) -> TimingPlan:
    record = _object(record, where, "an object or null")
    try:
        return TimingPlan.from_dict(record)
    except EdgesmithError as exc:
        raise EdgesmithError(f"{where}: {exc}") from None


@_or_null
def _device(record: object, where: str) -> DeviceProfile:
    """The device profile a document was judged against (keys this edgesmith lacks ignored)."""
    record = _object(record, where, "an object or null")
    known = {f.name for f in dataclasses.fields(DeviceProfile)}
    try:
        return DeviceProfile.from_dict({k: v for k, v in record.items() if k in known})
    except (EdgesmithError, TypeError, ValueError) as exc:
        raise EdgesmithError(f"{where}: {_one_line(exc)}") from None


@_or_null
def _per_class(record: object, where: str) -> dict[str, float | None]:
    record = _object(record, where, "an object of class: accuracy, or null")
    return {name: _fraction(value, f"{where}.{name}") for name, value in record.items()}


@_or_null
def _confusion(record: object, where: str) -> tuple[tuple[int, ...], ...]:
    square = isinstance(record, list) and all(
        isinstance(row, list) and len(row) == len(record) for row in record
    )
    if not square or not all(_whole(c) and c >= 0 for row in record for c in row):
        raise _refuse(where, "a square matrix of counts >= 0, or null", record)
    return tuple(tuple(row) for row in record)


@_or_null
def _budgets(record: object, where: str) -> dict[str, BudgetVerdict]:
    record = _object(record, where, "an object of budget: verdict, or null")
    return {name: BudgetVerdict.from_dict(v, f"{where}.{name}") for name, v in record.items()}


def _results(records: object, where: str) -> tuple[BenchResult, ...]:
    """The per-model results (a non-empty list: :meth:`BenchDocument.from_dict` checks first)."""
    return tuple(BenchResult.from_dict(r, f"{where}[{i}]") for i, r in enumerate(records))


def _checked_first(value: object, where: str) -> Any:
    """A value :meth:`BenchDocument.from_dict` validated before reading the fields."""
    return value


# ---------------------------------------------------------------------------------------------
# Records


def _field(
    read: Reader,
    *,
    key: str | None = None,
    absent: Any = None,
    omit_none: bool = False,
    **default: Any,
) -> Any:
    """A record's field, with what reads it from JSON: each field is stated once, here.

    Args:
        read: validates the JSON value (``absent`` for a missing key) into the field's value.
        key: the JSON key, where it is not the field's name.
        absent: what a missing key reads as; a callable gets the fields read before this one
            (a default that is another field's value).
        omit_none: ``to_dict`` leaves the key out while the value is None (records that only
            some runs write).
        **default: the dataclass ``default`` or ``default_factory``.
    """
    metadata = {"read": read, "key": key or "", "absent": absent, "omit_none": omit_none}
    return dataclasses.field(metadata=metadata, **default)


class _Record:
    """The JSON mapping every record shares, driven by its fields' :func:`_field` readers.

    ``from_dict`` reads the fields in declaration order (keys this edgesmith does not know are
    ignored), then lets the record refuse what spans fields (:meth:`_check`); ``to_dict``
    writes every field in the same order, so a record's keys are its declaration.
    """

    KEY: ClassVar[str]  # how a message names the record when the caller names no place
    EXPECTED: ClassVar[str] = "an object"  # what a value that is not a JSON object should be
    SEPARATOR: ClassVar[str] = "."  # between the record's place and a key, in messages

    def to_dict(self) -> dict[str, Any]:
        """The record's JSON object."""
        record: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if not (f.metadata["omit_none"] and value is None):
                record[f.metadata["key"] or f.name] = json_ready(value)
        return record

    @classmethod
    def from_dict(cls: type[R], record: object, where: str | None = None) -> R:
        """Validate the record's JSON object (unknown keys are ignored).

        Args:
            record: the decoded JSON value.
            where: how messages name the record (its key by default).

        Raises:
            EdgesmithError: one line naming the key and the value refused.
        """
        where = cls.KEY if where is None else where
        record = _object(record, where, cls.EXPECTED)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            key, absent = f.metadata["key"] or f.name, f.metadata["absent"]
            value = record[key] if key in record else absent(values) if callable(absent) else absent
            values[f.name] = f.metadata["read"](value, f"{where}{cls.SEPARATOR}{key}")
        cls._check(values, where)
        return cls(**values)

    @classmethod
    def _check(cls, values: dict[str, Any], where: str) -> None:
        """Refuse what no single field shows (``values``: the fields read); nothing by default."""


@dataclasses.dataclass(frozen=True)
class Latency(_Record):
    """Latency percentiles of one model, in milliseconds, over ``runs`` timed runs.

    Validated as finite, positive, ordered and below an hour.

    Attributes:
        p50: the median; what budgets, the gate and the width search compare.
        p90: the 90th percentile.
        p99: the 99th percentile.
        mean: the mean (``throughput_ips`` is computed from it).
        min: the fastest run.
        max: the slowest run.
        runs: timed runs behind the numbers (>= 1).
        std: the runs' standard deviation (0 for a single run).
    """

    KEY = "latency_ms"
    EXPECTED = "an object with p50, p90, p99, mean, min, max, runs"
    p50: float = _field(_milliseconds)
    p90: float = _field(_milliseconds)
    p99: float = _field(_milliseconds)
    mean: float = _field(_milliseconds)
    min: float = _field(_milliseconds)
    max: float = _field(_milliseconds)
    runs: int = _field(_positive_int)
    std: float = _field(_std, default=0.0)

    @classmethod
    def _check(cls, values: dict[str, Any], where: str) -> None:
        ordered = [values[k] for k in ("min", "p50", "p90", "p99", "max")]
        if any(a > b * (1 + 1e-9) for a, b in zip(ordered[:-1], ordered[1:], strict=True)) or not (
            values["min"] <= values["mean"] * (1 + 1e-9)
            and values["mean"] <= values["max"] * (1 + 1e-9)
        ):
            raise EdgesmithError(
                f"{where} is inconsistent: expected min <= p50 <= p90 <= p99 <= max and min <= "
                f"mean <= max. Received: {', '.join(f'{k} {values[k]:g}' for k in LATENCY_KEYS)}"
            )


@dataclasses.dataclass(frozen=True)
class Machine(_Record, Mapping[str, Any]):
    """The ``machine`` record: what a latency was measured on (``runtime.machine``).

    It also reads as the JSON object it writes (a read-only mapping), so that
    ``machine.same_machine`` compares it with a fresh ``machine_info()`` dict. Every field may be
    null: a hand-written or foreign document need not say.

    Attributes:
        cpu: the CPU model name.
        isa: the instruction-set class of its int8 kernels (``x86-64-avx2``, ``arm64-dotprod``).
        cores: the machine's CPU count.
        usable_cores: the CPUs the bench process could run on (its affinity).
        os: system and kernel release (``Linux 6.8.0``).
        arch: the machine architecture (``x86_64``, ``aarch64``).
        python: the Python version.
        runtime_versions: package -> version of edgesmith, numpy and the runtimes installed.
    """

    KEY = "machine"
    cpu: str | None = _field(_optional_str, default=None)
    isa: str | None = _field(_optional_str, default=None)
    cores: int | None = _field(_optional_positive_int, default=None)
    usable_cores: int | None = _field(_optional_positive_int, default=None)
    os: str | None = _field(_optional_str, default=None)
    arch: str | None = _field(_optional_str, default=None)
    python: str | None = _field(_optional_str, default=None)
    runtime_versions: dict[str, str] = _field(_versions, default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(f.name for f in dataclasses.fields(self))

    def __len__(self) -> int:
        return len(dataclasses.fields(self))


@dataclasses.dataclass(frozen=True)
class ModelInput(_Record):
    """The ``input`` record of a result: the input as the runtime read it from the file.

    Every key is written, null included.

    Attributes:
        shape: one image's shape without the batch dimension (None for a dynamic size).
        layout: the batch's axis order (``NHWC``).
        dtype: the input tensor's element type (``int8``, ``float32``...).
        normalization: how raw pixels became the input, or None for model-ready inputs.
        raw_input: the normalisation is folded into the file: it takes raw pixels.
        quantization: the input tensor's own scale and zero point, or None for a float input.
    """

    KEY = "input"
    shape: tuple[int | None, ...] = _field(_sizes)
    layout: str | None = _field(_optional_str, default=None)
    dtype: str | None = _field(_optional_str, default=None)
    normalization: Normalization | None = _field(_normalization, default=None)
    raw_input: bool | None = _field(_optional_boolean, default=None)
    quantization: TensorQuantization | None = _field(_quantization, default=None)


@dataclasses.dataclass(frozen=True)
class TflmRecord(_Record):
    """The ``tflm`` record of a result benched with ``--provider tflm``.

    Attributes:
        arena_bytes: the tensor arena TFLite Micro allocated for the file.
        arena_head_bytes: its head (persistent) section, when TFLM reports it.
        arena_tail_bytes: its tail (non-persistent) section, when TFLM reports it.
        arena_source: how the arena was measured.
        latency_note: what the host latency of TFLM's reference kernels means (not device time).
    """

    KEY = "tflm"
    arena_bytes: int = _field(_count)
    arena_head_bytes: int | None = _field(_optional_count, default=None)
    arena_tail_bytes: int | None = _field(_optional_count, default=None)
    arena_source: str | None = _field(_optional_str, default=None)
    latency_note: str | None = _field(_optional_str, default=None)


@dataclasses.dataclass(frozen=True)
class Instructions(_Record):
    """The ``instructions`` record: instructions per inference, counted, not timed.

    A count is deterministic where wall-clock is not, so a gate on it sees a 2% change that
    noise hides; it compares like with like only (an int8 file runs more instructions than its
    float twin and is still faster), which is why it is recorded beside latency, never for it.

    Attributes:
        per_inference: instructions per inference (one timed step: set input, invoke, read
            output), the difference of two counted loops divided by their difference in runs,
            so start-up and the loop's own fixed cost cancel.
        runs: inferences in the longer counted loop.
        overhead: the fixed instructions outside the per-inference cost (the counting loop's
            entry), recorded to show it is not in ``per_inference``.
        tool: what counted (``valgrind-3.19.0 callgrind``, ``qemu icount``).
        scope: what lies inside the count.
    """

    KEY = "instructions"
    per_inference: float = _field(_instruction_count)
    runs: int = _field(_positive_int)
    overhead: int | None = _field(_optional_signed_int, default=None)
    tool: str | None = _field(_optional_str, default=None)
    scope: str | None = _field(_optional_str, default=None)


@dataclasses.dataclass(frozen=True)
class Emulation(_Record):
    """The ``emulation`` record of a document measured on an emulated CPU.

    Accuracy and agreement are the target's: the emulator runs the kernels the target's CPU
    would take. Its latency is the emulator's wall-clock on this host, never the device's time.

    Attributes:
        target: the emulated target (``x86-64-avx2``, ``aarch64``).
        emulator: the emulator and CPU model (``qemu-x86_64 7.2.0 -cpu Haswell``).
        note: what the latency numbers mean.
    """

    KEY = "emulation"
    target: str = _field(_name)
    emulator: str = _field(_name)
    note: str | None = _field(_optional_str, default=None)


@dataclasses.dataclass(frozen=True)
class BudgetVerdict(_Record):
    """One budget of a device profile judged against a result (``--device``).

    Attributes:
        limit: the profile's limit, in the budget's unit (KiB, ms, MiB, a fraction).
        value: what the bench measured, or None where it could not (accuracy without data).
        ok: whether the value is within the limit; None when it was not measured.
    """

    KEY = "budget"
    EXPECTED = "an object with limit, value, ok"
    limit: float = _field(_positive_number)
    value: float | None = _field(_optional_signed)
    ok: bool | None = _field(_optional_boolean)

    @classmethod
    def _check(cls, values: dict[str, Any], where: str) -> None:
        if values["value"] is None and values["ok"] is not None:
            raise EdgesmithError(
                f"{where}.ok must be null when value is null. Received: {values['ok']}"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchResult(_Record):
    """One benched model: where it was, what it was (sha256), how fast and how accurate.

    Its fields are declared in the order ``edgesmith bench`` has always written the keys.

    Attributes:
        path: the path as given to ``bench`` (a file or an artifact directory).
        model_file: the model file that path resolved to.
        sha256: the model file's content hash; the gate finds its reference by it.
        format: ``tflite`` or ``onnx``.
        runtime: ``litert``, ``onnxruntime`` or ``tflm``.
        provider: the provider the runtime used (e.g. ``xnnpack``, ``cpu``).
        threads: runtime threads, or None for the runtime's own choice.
        batch: images per timed inference.
        size_bytes: the model file's size; ``gzip_bytes`` gzipped (level 9): what pruning buys
            on the wire.
        gzip_bytes: see ``size_bytes``.
        load_ms: load time; ``first_inference_ms`` the first (untimed) inference's.
        first_inference_ms: see ``load_ms``.
        latency: the latency summary (``latency_ms`` in the JSON).
        rounds: interleaved timing rounds.
        throughput_ips: images per second at ``batch`` (from the mean latency).
        accuracy: fraction correct on ``num_eval`` images, or None without data.
        num_eval: images behind ``accuracy`` (0 without data).
        macs: multiply-accumulates per image (from the embedded metadata), or None.
        gmacs_per_s: achieved GMAC/s at the median latency, or None without ``macs``.
        peak_rss_mb: the bench process's peak resident memory; ``load_rss_mb`` what loading
            this model added (may be negative: memory returned to the system).
        load_rss_mb: see ``peak_rss_mb``.
        input: the model's input record (shape, dtype, normalisation) as the runtime read it.
        labels: class names in output order, when the file carries them.
        metadata: where the input record came from (``embedded``, ``artifact``, ``none``).
        notes: what a user must know about the numbers (fall-backs, missing metadata).
        tflm: TFLite Micro's measured arena and what its host latency means (``--provider
            tflm``); only written when set.
        instructions: instructions per inference (``--measure instructions``); only written
            when set.
        per_class: accuracy per class name (None for a class without eval images), with data;
            only written when set.
        confusion: the confusion matrix (rows: true class, columns: predicted), with data;
            only written when set.
        machine: the ``machine`` record it was measured on.
        budgets: the device profile's verdicts (``--device``), budget name -> verdict; only
            written when set.
    """

    KEY = "result"
    path: str = _field(_name)
    model_file: str = _field(_name, absent=lambda read: read["path"])
    sha256: str = _field(_sha256)
    format: str = _field(_format, absent=lambda read: Path(read["model_file"]).suffix.lstrip("."))
    runtime: str | None = _field(_optional_str, default=None)
    provider: str | None = _field(_optional_str)
    threads: int | None = _field(_optional_positive_int, absent=1)
    batch: int = _field(_positive_int, absent=1)
    size_bytes: int | None = _field(_optional_count, default=None)
    gzip_bytes: int | None = _field(_optional_count, default=None)
    load_ms: float | None = _field(_optional_number, default=None)
    first_inference_ms: float | None = _field(_optional_number, default=None)
    latency: Latency = _field(Latency.from_dict, key="latency_ms")
    rounds: int | None = _field(_optional_count, default=None)
    throughput_ips: float | None = _field(_optional_number, default=None)
    accuracy: float | None = _field(_fraction)
    num_eval: int = _field(_count, absent=0)
    macs: int | None = _field(_optional_count, default=None)
    gmacs_per_s: float | None = _field(_optional_number, default=None)
    peak_rss_mb: float | None = _field(_optional_number, default=None)
    load_rss_mb: float | None = _field(_optional_signed, default=None)
    input: ModelInput | None = _field(_or_null(ModelInput.from_dict), default=None)
    labels: tuple[str, ...] | None = _field(_optional_names, default=None)
    metadata: str | None = _field(_optional_str, default=None)
    notes: tuple[str, ...] = _field(_notes, default=())
    tflm: TflmRecord | None = _field(_or_null(TflmRecord.from_dict), omit_none=True, default=None)
    instructions: Instructions | None = _field(
        _or_null(Instructions.from_dict), omit_none=True, default=None
    )
    per_class: dict[str, float | None] | None = _field(_per_class, omit_none=True, default=None)
    confusion: tuple[tuple[int, ...], ...] | None = _field(_confusion, omit_none=True, default=None)
    machine: Machine | None = _field(_or_null(Machine.from_dict), default=None)
    budgets: dict[str, BudgetVerdict] | None = _field(_budgets, omit_none=True, default=None)

    def __post_init__(self) -> None:
        # Sequences are tuples whoever built the record (evaluate() gives lists), so that a
        # record equals its JSON read back.
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "notes", tuple(self.notes))
        if self.confusion is not None:
            confusion = tuple(tuple(int(c) for c in row) for row in self.confusion)
            object.__setattr__(self, "confusion", confusion)

    @classmethod
    def _check(cls, values: dict[str, Any], where: str) -> None:
        if values["accuracy"] is not None and values["num_eval"] < 1:
            raise EdgesmithError(
                f"{where}.accuracy needs num_eval >= 1 images behind it. "
                f"Received: num_eval {values['num_eval']}"
            )


@dataclasses.dataclass(frozen=True)
class BenchSettings(_Record):
    """The run's settings a re-measurement must repeat (null or missing keys: the defaults).

    Attributes:
        threads: runtime threads, or None for the runtime's choice.
        batch: images per timed inference.
        provider: the provider asked for (``--provider``), or None for the default.
        xnnpack: LiteRT's XNNPACK delegate on (True) or builtin kernels.
        foreign_normalization: the normalisation given for files without edgesmith metadata.
        affinity: the CPUs the bench was pinned to (taskset style), or None.
        eval_batch: images per runtime call when measuring accuracy.
        timing: the warm-up and minimum runs/seconds, or None (older documents).
    """

    KEY = "settings"
    threads: int | None = _field(_optional_positive_int, absent=1)
    batch: int = _field(_positive_int, absent=1)
    provider: str | None = _field(_optional_str)
    xnnpack: bool = _field(_boolean, absent=True)
    foreign_normalization: str | None = _field(_optional_str, default=None)
    affinity: str | None = _field(_optional_str, default=None)
    eval_batch: int = _field(_positive_int, absent=64, default=64)
    timing: TimingPlan | None = _field(_timing, default=None)

    @classmethod
    def from_dict(cls, record: object, where: str | None = None) -> BenchSettings:
        """Validate a ``settings`` record; a null one takes every default.

        Raises:
            EdgesmithError: one line naming the key and the value refused.
        """
        return super().from_dict({} if record is None else record, where)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchDocument(_Record):
    """A validated bench document; its fields are declared in the order they are written.

    Attributes:
        schema_version: the version it was written with.
        created: when it was measured (ISO 8601, UTC).
        data: the data spec accuracy was measured on, or None.
        settings: the run's settings.
        machine: the ``machine`` record (see ``edgesmith.runtime.machine``).
        results: one entry per model.
        store: the store folder's name beside the JSON file, or None (version 1, or JSON that
            went to stdout).
        device: the device profile it was judged against (``--device``), or None.
        host: the device it was measured on over SSH (``edgesmith build --host``), or None
            for this machine.
        emulation: the emulated CPU it was measured on (``--emulate``), or None for a real one.
    """

    KEY = "bench document"
    SEPARATOR = ": "
    schema_version: int = _field(_checked_first)
    created: str | None = _field(_optional_str, default=None)
    data: str | None = _field(_optional_str)
    settings: BenchSettings = _field(BenchSettings.from_dict)
    machine: Machine = _field(Machine.from_dict)
    results: tuple[BenchResult, ...] = _field(_results)
    store: str | None = _field(_store, omit_none=True)
    device: DeviceProfile | None = _field(_device, omit_none=True, default=None)
    host: str | None = _field(_optional_str, omit_none=True, default=None)
    emulation: Emulation | None = _field(
        _or_null(Emulation.from_dict), omit_none=True, default=None
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", tuple(self.results))

    def to_dict(self) -> dict[str, Any]:
        """The document as ``edgesmith bench --json`` writes it."""
        return {"schema": SCHEMA, **super().to_dict()}

    @classmethod
    def from_dict(cls, document: object, where: str | None = None) -> BenchDocument:
        """Validate a decoded bench document and return its typed form.

        Unknown keys are ignored (a newer edgesmith, e.g. on a device over SSH, may add some);
        every known key is checked.

        Raises:
            EdgesmithError: one line naming the first invalid key and what was expected.
        """
        where = cls.KEY if where is None else where
        if not isinstance(document, dict) or document.get("schema") != SCHEMA:
            found = (
                document.get("schema") if isinstance(document, dict) else type(document).__name__
            )
            raise EdgesmithError(
                f"{where} is not an edgesmith bench result (schema {_short(found)}; expected "
                f"{SCHEMA!r} from edgesmith bench --json-out)"
            )
        version = document.get("schema_version")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise EdgesmithError(
                f"{where} has schema_version {_short(version)}; this edgesmith reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}"
            )
        results = document.get("results")
        if not isinstance(results, list) or not results:
            raise EdgesmithError(f"{where} holds no per-model results with latency_ms.p50")
        return super().from_dict(document, where)

    def replace(self, **changes: Any) -> BenchDocument:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def read_document(path: str | Path) -> BenchDocument:
    """Read and validate a bench JSON file.

    Raises:
        EdgesmithError: for a missing, oversized or non-JSON file or an invalid document.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgesmithError(
            f"baseline not found: {path} (write one with edgesmith bench --json-out)"
        )
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        raise EdgesmithError(
            f"baseline {path} is over {MAX_DOCUMENT_BYTES // 2**20} MiB: not a bench result"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise EdgesmithError(f"baseline {path} is not valid JSON: {_one_line(exc)}") from None
    return parse_document(document, f"baseline {path}")


def parse_document(document: object, where: str = "bench document") -> BenchDocument:
    """Validate a decoded bench document into its records (:meth:`BenchDocument.from_dict`).

    Raises:
        EdgesmithError: one line naming the first invalid key and what was expected.
    """
    return BenchDocument.from_dict(document, where)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")
