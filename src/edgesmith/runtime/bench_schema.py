"""The bench document as a typed, versioned schema, written and validated by the same records.

``edgesmith bench --json-out FILE`` writes a JSON document; ``edgesmith check`` reads it back as
a baseline, and ``edgesmith build`` and the width search read it after a bench on a device. Every
key the product writes is a field of one frozen dataclass here, and each record has a
``to_dict()`` (the JSON, with the keys edgesmith has always written) and a ``from_dict()`` (the
validation); :func:`benchmark` returns a :class:`BenchDocument` and readers use its attributes,
never the JSON's keys.

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
import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

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
_RESULT_ORDER = (
    "path", "model_file", "sha256", "format", "runtime", "provider", "threads", "batch",
    "size_bytes", "gzip_bytes", "load_ms", "first_inference_ms", "latency", "rounds",
    "throughput_ips", "accuracy", "num_eval", "macs", "gmacs_per_s", "peak_rss_mb",
    "load_rss_mb", "input", "labels", "metadata", "notes", "tflm", "instructions", "per_class",
    "confusion", "machine", "budgets",
)  # fmt: skip
_WRITTEN_WHEN_SET = ("tflm", "instructions", "per_class", "confusion", "budgets")
# Far above any model an edge device runs (ResNet-8 int8: 4.1 M per inference).
MAX_INSTRUCTIONS = 10**15
_SHA256 = re.compile(r"[0-9a-f]{64}")
_STORE = re.compile(r"[A-Za-z0-9._-]+")


@dataclasses.dataclass(frozen=True)
class Latency:
    """Latency percentiles of one model, in milliseconds, over ``runs`` timed runs.

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

    p50: float
    p90: float
    p99: float
    mean: float
    min: float
    max: float
    runs: int
    std: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The ``latency_ms`` record."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: object, where: str = "latency_ms") -> Latency:
        """Validate a ``latency_ms`` record: finite, positive, ordered, below an hour.

        Raises:
            EdgesmithError: one line naming the key and the value refused.
        """
        if not isinstance(record, dict):
            raise EdgesmithError(
                f"{where} must be an object with p50, p90, p99, mean, min, max, runs. "
                f"Received: {_short(record)}"
            )
        values = {}
        for key in LATENCY_KEYS:
            value = record.get(key)
            if not _finite(value) or not 0.0 < value <= MAX_LATENCY_MS:
                raise EdgesmithError(
                    f"{where}.{key} must be a finite number of milliseconds in "
                    f"(0, {MAX_LATENCY_MS:g}]. Received: {_short(value)}"
                )
            values[key] = float(value)
        ordered = [values[k] for k in ("min", "p50", "p90", "p99", "max")]
        if any(a > b * (1 + 1e-9) for a, b in zip(ordered[:-1], ordered[1:], strict=True)) or not (
            values["min"] <= values["mean"] * (1 + 1e-9)
            and values["mean"] <= values["max"] * (1 + 1e-9)
        ):
            raise EdgesmithError(
                f"{where} is inconsistent: expected min <= p50 <= p90 <= p99 <= max and min <= "
                f"mean <= max. Received: {', '.join(f'{k} {values[k]:g}' for k in LATENCY_KEYS)}"
            )
        runs = _positive_int(record.get("runs"), f"{where}.runs")
        std = _optional_number(record.get("std", 0.0), f"{where}.std")
        return cls(runs=runs, std=std or 0.0, **values)


@dataclasses.dataclass(frozen=True)
class Machine(Mapping[str, Any]):
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

    cpu: str | None = None
    isa: str | None = None
    cores: int | None = None
    usable_cores: int | None = None
    os: str | None = None
    arch: str | None = None
    python: str | None = None
    runtime_versions: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``machine`` record."""
        record = dataclasses.asdict(self)
        record["runtime_versions"] = dict(self.runtime_versions)
        return record

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(f.name for f in dataclasses.fields(self))

    def __len__(self) -> int:
        return len(dataclasses.fields(self))

    @classmethod
    def from_dict(cls, record: object, where: str = "machine") -> Machine:
        """Validate a ``machine`` record (unknown keys are ignored).

        Raises:
            EdgesmithError: one line naming the key and the value refused.
        """
        if not isinstance(record, dict):
            raise EdgesmithError(f"{where} must be an object. Received: {_short(record)}")
        versions = record.get("runtime_versions")
        if versions is None:
            versions = {}
        if not isinstance(versions, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in versions.items()
        ):
            raise EdgesmithError(
                f"{where}.runtime_versions must be an object of package: version strings. "
                f"Received: {_short(versions)}"
            )
        strings = {
            name: _optional_str(record.get(name), f"{where}.{name}")
            for name in ("cpu", "isa", "os", "arch", "python")
        }
        return cls(
            cores=_optional_positive_int(record.get("cores"), f"{where}.cores"),
            usable_cores=_optional_positive_int(
                record.get("usable_cores"), f"{where}.usable_cores"
            ),
            runtime_versions=dict(versions),
            **strings,
        )


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """The ``input`` record of a result: the input as the runtime read it from the file.

    Attributes:
        shape: one image's shape without the batch dimension (None for a dynamic size).
        layout: the batch's axis order (``NHWC``).
        dtype: the input tensor's element type (``int8``, ``float32``...).
        normalization: how raw pixels became the input, or None for model-ready inputs.
        raw_input: the normalisation is folded into the file: it takes raw pixels.
        quantization: the input tensor's own scale and zero point, or None for a float input.
    """

    shape: tuple[int | None, ...]
    layout: str | None = None
    dtype: str | None = None
    normalization: Normalization | None = None
    raw_input: bool | None = None
    quantization: TensorQuantization | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``input`` record (every key written, null included)."""
        return {
            "shape": list(self.shape),
            "layout": self.layout,
            "dtype": self.dtype,
            "normalization": None if self.normalization is None else self.normalization.to_dict(),
            "raw_input": self.raw_input,
            "quantization": None if self.quantization is None else self.quantization.to_dict(),
        }

    @classmethod
    def from_dict(cls, record: object, where: str = "input") -> ModelInput:
        """Validate an ``input`` record (unknown keys are ignored).

        Raises:
            EdgesmithError: one line naming the key and the value refused.
        """
        if not isinstance(record, dict):
            raise EdgesmithError(f"{where} must be an object. Received: {_short(record)}")
        shape = record.get("shape")
        if not isinstance(shape, list) or not all(
            d is None or (_whole(d) and d >= 1) for d in shape
        ):
            raise EdgesmithError(
                f"{where}.shape must be a list of sizes >= 1 (or null). Received: {_short(shape)}"
            )
        raw_input = record.get("raw_input")
        if raw_input is not None and not isinstance(raw_input, bool):
            raise EdgesmithError(
                f"{where}.raw_input must be true, false or null. Received: {_short(raw_input)}"
            )
        return cls(
            shape=tuple(shape),
            layout=_optional_str(record.get("layout"), f"{where}.layout"),
            dtype=_optional_str(record.get("dtype"), f"{where}.dtype"),
            normalization=_normalization(record.get("normalization"), f"{where}.normalization"),
            raw_input=raw_input,
            quantization=_quantization(record.get("quantization"), f"{where}.quantization"),
        )


@dataclasses.dataclass(frozen=True)
class TflmRecord:
    """The ``tflm`` record of a result benched with ``--provider tflm``.

    Attributes:
        arena_bytes: the tensor arena TFLite Micro allocated for the file.
        arena_head_bytes: its head (persistent) section, when TFLM reports it.
        arena_tail_bytes: its tail (non-persistent) section, when TFLM reports it.
        arena_source: how the arena was measured.
        latency_note: what the host latency of TFLM's reference kernels means (not device time).
    """

    arena_bytes: int
    arena_head_bytes: int | None = None
    arena_tail_bytes: int | None = None
    arena_source: str | None = None
    latency_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``tflm`` record."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: object, where: str = "tflm") -> TflmRecord:
        """Validate a ``tflm`` record (unknown keys are ignored).

        Raises:
            EdgesmithError: one line naming the key and the value refused.
        """
        if not isinstance(record, dict):
            raise EdgesmithError(f"{where} must be an object. Received: {_short(record)}")
        arena = record.get("arena_bytes")
        if not _whole(arena) or arena < 0:
            raise EdgesmithError(
                f"{where}.arena_bytes must be a whole number >= 0. Received: {_short(arena)}"
            )
        return cls(
            arena_bytes=arena,
            arena_head_bytes=_optional_number(
                record.get("arena_head_bytes"), f"{where}.arena_head_bytes", int
            ),
            arena_tail_bytes=_optional_number(
                record.get("arena_tail_bytes"), f"{where}.arena_tail_bytes", int
            ),
            arena_source=_optional_str(record.get("arena_source"), f"{where}.arena_source"),
            latency_note=_optional_str(record.get("latency_note"), f"{where}.latency_note"),
        )


@dataclasses.dataclass(frozen=True)
class Instructions:
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

    per_inference: float
    runs: int
    overhead: int | None = None
    tool: str | None = None
    scope: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``instructions`` record."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: object, where: str = "instructions") -> Instructions:
        """Validate an ``instructions`` record (unknown keys are ignored).

        Raises:
            EdgesmithError: one line naming the key and the value refused.
        """
        if not isinstance(record, dict):
            raise EdgesmithError(f"{where} must be an object. Received: {_short(record)}")
        count = record.get("per_inference")
        if not _finite(count) or not 0 < count <= MAX_INSTRUCTIONS:
            raise EdgesmithError(
                f"{where}.per_inference must be a number in (0, {MAX_INSTRUCTIONS:.0e}]. "
                f"Received: {_short(count)}"
            )
        return cls(
            per_inference=float(count),
            runs=_positive_int(record.get("runs"), f"{where}.runs"),
            overhead=_optional_number(
                record.get("overhead"), f"{where}.overhead", int, low=-math.inf
            ),
            tool=_optional_str(record.get("tool"), f"{where}.tool"),
            scope=_optional_str(record.get("scope"), f"{where}.scope"),
        )


@dataclasses.dataclass(frozen=True)
class Emulation:
    """The ``emulation`` record of a document measured on an emulated CPU.

    Accuracy and agreement are the target's: the emulator runs the kernels the target's CPU
    would take. Its latency is the emulator's wall-clock on this host, never the device's time.

    Attributes:
        target: the emulated target (``x86-64-avx2``, ``aarch64``).
        emulator: the emulator and CPU model (``qemu-x86_64 7.2.0 -cpu Haswell``).
        note: what the latency numbers mean.
    """

    target: str
    emulator: str
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``emulation`` record."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: object, where: str = "emulation") -> Emulation:
        """Validate an ``emulation`` record (unknown keys are ignored).

        Raises:
            EdgesmithError: one line naming the key and the value refused.
        """
        if not isinstance(record, dict):
            raise EdgesmithError(f"{where} must be an object. Received: {_short(record)}")
        for key in ("target", "emulator"):
            if not isinstance(record.get(key), str) or not record[key]:
                raise EdgesmithError(
                    f"{where}.{key} must be a non-empty string. Received: {_short(record.get(key))}"
                )
        return cls(
            target=record["target"],
            emulator=record["emulator"],
            note=_optional_str(record.get("note"), f"{where}.note"),
        )


@dataclasses.dataclass(frozen=True)
class BudgetVerdict:
    """One budget of a device profile judged against a result (``--device``).

    Attributes:
        limit: the profile's limit, in the budget's unit (KiB, ms, MiB, a fraction).
        value: what the bench measured, or None where it could not (accuracy without data).
        ok: whether the value is within the limit; None when it was not measured.
    """

    limit: float
    value: float | None
    ok: bool | None

    def to_dict(self) -> dict[str, Any]:
        """The verdict record: ``{"limit", "value", "ok"}``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: object, where: str = "budget") -> BudgetVerdict:
        """Validate a verdict record (unknown keys are ignored).

        Raises:
            EdgesmithError: one line naming the key and the value refused.
        """
        if not isinstance(record, dict):
            raise EdgesmithError(
                f"{where} must be an object with limit, value, ok. Received: {_short(record)}"
            )
        limit = record.get("limit")
        if not _finite(limit) or limit <= 0:
            raise EdgesmithError(
                f"{where}.limit must be a positive number. Received: {_short(limit)}"
            )
        value = _optional_number(record.get("value"), f"{where}.value", low=-math.inf)
        ok = record.get("ok")
        if ok is not None and not isinstance(ok, bool):
            raise EdgesmithError(f"{where}.ok must be true, false or null. Received: {_short(ok)}")
        if value is None and ok is not None:
            raise EdgesmithError(f"{where}.ok must be null when value is null. Received: {ok}")
        return cls(limit=limit, value=value, ok=ok)


@dataclasses.dataclass(frozen=True)
class BenchResult:
    """One benched model: where it was, what it was (sha256), how fast and how accurate.

    Attributes:
        path: the path as given to ``bench`` (a file or an artifact directory).
        model_file: the model file that path resolved to.
        sha256: the model file's content hash; the gate finds its reference by it.
        format: ``tflite`` or ``onnx``.
        provider: the provider the runtime used (e.g. ``xnnpack``, ``cpu``).
        threads: runtime threads, or None for the runtime's own choice.
        batch: images per timed inference.
        latency: the latency summary (``latency_ms`` in the JSON).
        accuracy: fraction correct on ``num_eval`` images, or None without data.
        num_eval: images behind ``accuracy`` (0 without data).
        runtime: ``litert``, ``onnxruntime`` or ``tflm``.
        size_bytes: the model file's size; ``gzip_bytes`` gzipped (level 9): what pruning buys
            on the wire.
        gzip_bytes: see ``size_bytes``.
        load_ms: load time; ``first_inference_ms`` the first (untimed) inference's.
        first_inference_ms: see ``load_ms``.
        rounds: interleaved timing rounds.
        throughput_ips: images per second at ``batch`` (from the mean latency).
        macs: multiply-accumulates per image (from the embedded metadata), or None.
        gmacs_per_s: achieved GMAC/s at the median latency, or None without ``macs``.
        peak_rss_mb: the bench process's peak resident memory; ``load_rss_mb`` what loading
            this model added (may be negative: memory returned to the system).
        load_rss_mb: see ``peak_rss_mb``.
        input: the model's input record (shape, dtype, normalisation) as the runtime read it.
        labels: class names in output order, when the file carries them.
        metadata: where the input record came from (``embedded``, ``artifact``, ``none``).
        notes: what a user must know about the numbers (fall-backs, missing metadata).
        per_class: accuracy per class name (None for a class without eval images), with data.
        confusion: the confusion matrix (rows: true class, columns: predicted), with data.
        machine: the ``machine`` record it was measured on.
        tflm: TFLite Micro's measured arena and what its host latency means (``--provider
            tflm``); only written when set.
        instructions: instructions per inference (``--measure instructions``); only written
            when set.
        budgets: the device profile's verdicts (``--device``), budget name -> verdict; only
            written when set.
    """

    path: str
    model_file: str
    sha256: str
    format: str
    provider: str | None
    threads: int | None
    batch: int
    latency: Latency
    accuracy: float | None
    num_eval: int
    runtime: str | None = None
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    load_ms: float | None = None
    first_inference_ms: float | None = None
    rounds: int | None = None
    throughput_ips: float | None = None
    macs: int | None = None
    gmacs_per_s: float | None = None
    peak_rss_mb: float | None = None
    load_rss_mb: float | None = None
    input: ModelInput | None = None
    labels: tuple[str, ...] | None = None
    metadata: str | None = None
    notes: tuple[str, ...] = ()
    per_class: dict[str, float | None] | None = None
    confusion: tuple[tuple[int, ...], ...] | None = None
    machine: Machine | None = None
    tflm: TflmRecord | None = None
    instructions: Instructions | None = None
    budgets: dict[str, BudgetVerdict] | None = None

    def __post_init__(self) -> None:
        # Sequences are tuples whoever built the record (evaluate() gives lists), so that a
        # record equals its JSON read back.
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "notes", tuple(self.notes))
        if self.confusion is not None:
            confusion = tuple(tuple(int(c) for c in row) for row in self.confusion)
            object.__setattr__(self, "confusion", confusion)

    def to_dict(self) -> dict[str, Any]:
        """The result's JSON record (the keys ``edgesmith bench`` has always written)."""
        record: dict[str, Any] = {}
        for name in _RESULT_ORDER:
            value = getattr(self, name)
            if name in _WRITTEN_WHEN_SET and value is None:
                continue
            record["latency_ms" if name == "latency" else name] = json_ready(value)
        return record

    @classmethod
    def from_dict(cls, record: object, where: str = "result") -> BenchResult:
        """Validate one result record (unknown keys are ignored).

        Raises:
            EdgesmithError: one line naming the key and the value refused.
        """
        if not isinstance(record, dict):
            raise EdgesmithError(f"{where} must be an object. Received: {_short(record)}")
        path = record.get("path")
        if not isinstance(path, str) or not path:
            raise EdgesmithError(
                f"{where}.path must be a non-empty string. Received: {_short(path)}"
            )
        model_file = record.get("model_file", path)
        if not isinstance(model_file, str) or not model_file:
            raise EdgesmithError(
                f"{where}.model_file must be a non-empty string. Received: {_short(model_file)}"
            )
        sha = record.get("sha256")
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise EdgesmithError(
                f"{where}.sha256 must be 64 lowercase hex digits. Received: {_short(sha)}"
            )
        fmt = record.get("format", Path(model_file).suffix.lstrip("."))
        if fmt not in FORMATS:
            raise EdgesmithError(
                f"{where}.format must be one of {', '.join(FORMATS)}. Received: {_short(fmt)}"
            )
        accuracy = record.get("accuracy")
        num_eval = record.get("num_eval", 0)
        if not _whole(num_eval) or num_eval < 0:
            raise EdgesmithError(
                f"{where}.num_eval must be a whole number >= 0. Received: {_short(num_eval)}"
            )
        if accuracy is not None:
            if not _finite(accuracy) or not 0.0 <= accuracy <= 1.0:
                raise EdgesmithError(
                    f"{where}.accuracy must be a fraction in [0, 1] or null. "
                    f"Received: {_short(accuracy)}"
                )
            if num_eval < 1:
                raise EdgesmithError(
                    f"{where}.accuracy needs num_eval >= 1 images behind it. "
                    f"Received: num_eval {num_eval}"
                )
        return cls(
            path=path,
            model_file=model_file,
            sha256=sha,
            format=fmt,
            provider=_optional_str(record.get("provider"), f"{where}.provider"),
            threads=_optional_positive_int(record.get("threads", 1), f"{where}.threads"),
            batch=_positive_int(record.get("batch", 1), f"{where}.batch"),
            latency=Latency.from_dict(record.get("latency_ms"), f"{where}.latency_ms"),
            accuracy=None if accuracy is None else float(accuracy),
            num_eval=num_eval,
            runtime=_optional_str(record.get("runtime"), f"{where}.runtime"),
            size_bytes=_optional_number(record.get("size_bytes"), f"{where}.size_bytes", int),
            gzip_bytes=_optional_number(record.get("gzip_bytes"), f"{where}.gzip_bytes", int),
            load_ms=_optional_number(record.get("load_ms"), f"{where}.load_ms"),
            first_inference_ms=_optional_number(
                record.get("first_inference_ms"), f"{where}.first_inference_ms"
            ),
            rounds=_optional_number(record.get("rounds"), f"{where}.rounds", int),
            throughput_ips=_optional_number(
                record.get("throughput_ips"), f"{where}.throughput_ips"
            ),
            macs=_optional_number(record.get("macs"), f"{where}.macs", int),
            gmacs_per_s=_optional_number(record.get("gmacs_per_s"), f"{where}.gmacs_per_s"),
            peak_rss_mb=_optional_number(record.get("peak_rss_mb"), f"{where}.peak_rss_mb"),
            load_rss_mb=_optional_number(
                record.get("load_rss_mb"), f"{where}.load_rss_mb", low=-math.inf
            ),
            input=_optional(ModelInput, record.get("input"), f"{where}.input"),
            labels=_optional_names(record.get("labels"), f"{where}.labels"),
            metadata=_optional_str(record.get("metadata"), f"{where}.metadata"),
            notes=_optional_names(record.get("notes"), f"{where}.notes") or (),
            per_class=_per_class(record.get("per_class"), f"{where}.per_class"),
            confusion=_confusion(record.get("confusion"), f"{where}.confusion"),
            machine=_optional(Machine, record.get("machine"), f"{where}.machine"),
            tflm=_optional(TflmRecord, record.get("tflm"), f"{where}.tflm"),
            instructions=_optional(
                Instructions, record.get("instructions"), f"{where}.instructions"
            ),
            budgets=_budgets(record.get("budgets"), f"{where}.budgets"),
        )


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """The run's settings a re-measurement must repeat.

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

    threads: int | None
    batch: int
    provider: str | None
    xnnpack: bool
    foreign_normalization: str | None = None
    affinity: str | None = None
    eval_batch: int = 64
    timing: TimingPlan | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``settings`` record."""
        record = dataclasses.asdict(self)
        record["timing"] = None if self.timing is None else self.timing.to_dict()
        return record

    @classmethod
    def from_dict(cls, record: object, where: str = "settings") -> BenchSettings:
        """Validate a ``settings`` record (null or missing keys take their defaults).

        Raises:
            EdgesmithError: one line naming the key and the value refused.
        """
        if record is None:
            record = {}
        if not isinstance(record, dict):
            raise EdgesmithError(f"{where} must be an object. Received: {_short(record)}")
        xnnpack = record.get("xnnpack", True)
        if not isinstance(xnnpack, bool):
            raise EdgesmithError(
                f"{where}.xnnpack must be true or false. Received: {_short(xnnpack)}"
            )
        return cls(
            threads=_optional_positive_int(record.get("threads", 1), f"{where}.threads"),
            batch=_positive_int(record.get("batch", 1), f"{where}.batch"),
            provider=_optional_str(record.get("provider"), f"{where}.provider"),
            xnnpack=xnnpack,
            foreign_normalization=_optional_str(
                record.get("foreign_normalization"), f"{where}.foreign_normalization"
            ),
            affinity=_optional_str(record.get("affinity"), f"{where}.affinity"),
            eval_batch=_positive_int(record.get("eval_batch", 64), f"{where}.eval_batch"),
            timing=_timing(record.get("timing"), f"{where}.timing"),
        )


@dataclasses.dataclass(frozen=True)
class BenchDocument:
    """A validated bench document.

    Attributes:
        schema_version: the version it was written with.
        data: the data spec accuracy was measured on, or None.
        settings: the run's settings.
        machine: the ``machine`` record (see ``edgesmith.runtime.machine``).
        results: one entry per model.
        store: the store folder's name beside the JSON file, or None (version 1, or JSON that
            went to stdout).
        created: when it was measured (ISO 8601, UTC).
        device: the device profile it was judged against (``--device``), or None.
        host: the device it was measured on over SSH (``edgesmith build --host``), or None
            for this machine.
        emulation: the emulated CPU it was measured on (``--emulate``), or None for a real one.
    """

    schema_version: int
    data: str | None
    settings: BenchSettings
    machine: Machine
    results: tuple[BenchResult, ...]
    store: str | None
    created: str | None = None
    device: DeviceProfile | None = None
    host: str | None = None
    emulation: Emulation | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", tuple(self.results))

    def to_dict(self) -> dict[str, Any]:
        """The document as ``edgesmith bench --json`` writes it."""
        record: dict[str, Any] = {
            "schema": SCHEMA,
            "schema_version": self.schema_version,
            "created": self.created,
            "data": self.data,
            "settings": self.settings.to_dict(),
            "machine": self.machine.to_dict(),
            "results": [r.to_dict() for r in self.results],
        }
        if self.store is not None:
            record["store"] = self.store
        if self.device is not None:
            record["device"] = self.device.to_dict()
        if self.host is not None:
            record["host"] = self.host
        if self.emulation is not None:
            record["emulation"] = self.emulation.to_dict()
        return record

    @classmethod
    def from_dict(cls, document: object, where: str = "bench document") -> BenchDocument:
        """Validate a decoded bench document and return its typed form.

        Unknown keys are ignored (a newer edgesmith, e.g. on a device over SSH, may add some);
        every known key is checked.

        Raises:
            EdgesmithError: one line naming the first invalid key and what was expected.
        """
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
        data = _optional_str(document.get("data"), f"{where}: data")
        settings = BenchSettings.from_dict(document.get("settings"), f"{where}: settings")
        machine = Machine.from_dict(document.get("machine"), f"{where}: machine")
        store = document.get("store")
        if store is not None and (
            not isinstance(store, str) or not _STORE.fullmatch(store) or store in (".", "..")
        ):
            raise EdgesmithError(
                f"{where}: store must be one folder name beside the JSON file. "
                f"Received: {_short(store)}"
            )
        parsed = tuple(
            BenchResult.from_dict(r, f"{where}: results[{i}]") for i, r in enumerate(results)
        )
        return cls(
            schema_version=version,
            data=data,
            settings=settings,
            machine=machine,
            results=parsed,
            store=store,
            created=_optional_str(document.get("created"), f"{where}: created"),
            device=_device(document.get("device"), f"{where}: device"),
            host=_optional_str(document.get("host"), f"{where}: host"),
            emulation=_optional(Emulation, document.get("emulation"), f"{where}: emulation"),
        )

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


def _optional(cls: Any, value: object, where: str) -> Any:
    """``cls.from_dict(value)``, or None for null."""
    return None if value is None else cls.from_dict(value, where)


def _timing(record: object, where: str) -> TimingPlan | None:
    if record is None:
        return None
    if not isinstance(record, dict):
        raise EdgesmithError(f"{where} must be an object or null. Received: {_short(record)}")
    try:
        return TimingPlan.from_dict(record)
    except EdgesmithError as exc:
        raise EdgesmithError(f"{where}: {exc}") from None


def _device(record: object, where: str) -> DeviceProfile | None:
    """The device profile a document was judged against (keys this edgesmith lacks ignored)."""
    if record is None:
        return None
    if not isinstance(record, dict):
        raise EdgesmithError(f"{where} must be an object or null. Received: {_short(record)}")
    known = {f.name for f in dataclasses.fields(DeviceProfile)}
    try:
        return DeviceProfile.from_dict({k: v for k, v in record.items() if k in known})
    except (EdgesmithError, TypeError, ValueError) as exc:
        raise EdgesmithError(f"{where}: {_one_line(exc)}") from None


def _normalization(record: object, where: str) -> Normalization | None:
    if record is None:
        return None
    try:
        return Normalization.from_dict(record)  # type: ignore[arg-type]
    except (EdgesmithError, TypeError, ValueError) as exc:
        raise EdgesmithError(f"{where}: {_one_line(exc)}") from None


def _quantization(record: object, where: str) -> TensorQuantization | None:
    if record is None:
        return None
    if not isinstance(record, dict):
        raise EdgesmithError(
            f"{where} must be an object with scale and zero_point, or null. "
            f"Received: {_short(record)}"
        )
    scale, zero_point = record.get("scale"), record.get("zero_point")
    if not _finite(scale) or scale <= 0:
        raise EdgesmithError(f"{where}.scale must be a positive number. Received: {_short(scale)}")
    if not _whole(zero_point):
        raise EdgesmithError(
            f"{where}.zero_point must be a whole number. Received: {_short(zero_point)}"
        )
    return TensorQuantization(scale=scale, zero_point=zero_point)


def _per_class(record: object, where: str) -> dict[str, float | None] | None:
    if record is None:
        return None
    if not isinstance(record, dict):
        raise EdgesmithError(
            f"{where} must be an object of class: accuracy, or null. Received: {_short(record)}"
        )
    for name, value in record.items():
        if value is not None and (not _finite(value) or not 0.0 <= value <= 1.0):
            raise EdgesmithError(
                f"{where}.{name} must be a fraction in [0, 1] or null. Received: {_short(value)}"
            )
    return {name: None if v is None else float(v) for name, v in record.items()}


def _confusion(record: object, where: str) -> tuple[tuple[int, ...], ...] | None:
    if record is None:
        return None
    square = isinstance(record, list) and all(
        isinstance(row, list) and len(row) == len(record) for row in record
    )
    if not square or not all(_whole(c) and c >= 0 for row in record for c in row):
        raise EdgesmithError(
            f"{where} must be a square matrix of counts >= 0, or null. Received: {_short(record)}"
        )
    return tuple(tuple(row) for row in record)


def _budgets(record: object, where: str) -> dict[str, BudgetVerdict] | None:
    if record is None:
        return None
    if not isinstance(record, dict):
        raise EdgesmithError(
            f"{where} must be an object of budget: verdict, or null. Received: {_short(record)}"
        )
    return {name: BudgetVerdict.from_dict(v, f"{where}.{name}") for name, v in record.items()}


def _optional_number(
    value: object, where: str, kind: type = float, low: float = 0.0
) -> int | float | None:
    if value is None:
        return None
    whole = kind is int and isinstance(value, int)
    if not _finite(value) or (kind is int and not whole) or value < low:
        what = "a whole number" if kind is int else "a finite number"
        floor = "" if low == -math.inf else f" >= {low:g}"
        raise EdgesmithError(f"{where} must be {what}{floor} or null. Received: {_short(value)}")
    return value if kind is int else float(value)


def _optional_names(value: object, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EdgesmithError(f"{where} must be a list of strings. Received: {_short(value)}")
    return tuple(value)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: object, where: str) -> int:
    if not _whole(value) or value < 1:
        raise EdgesmithError(f"{where} must be a whole number >= 1. Received: {_short(value)}")
    return value


def _optional_positive_int(value: object, where: str) -> int | None:
    return None if value is None else _positive_int(value, where)


def _optional_str(value: object, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise EdgesmithError(f"{where} must be a string or null. Received: {_short(value)}")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
