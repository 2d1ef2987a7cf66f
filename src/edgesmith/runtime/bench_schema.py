"""The bench document as a typed, versioned schema, validated whenever it is read back.

``edgesmith bench --json-out FILE`` writes a JSON document; ``edgesmith check`` reads it back as
a baseline, and ``edgesmith build`` and the width search read it after a bench on a device. A
document read from disk (or from another machine over SSH) is input like any other: it may be
stale, hand-edited or hostile. :func:`parse_document` turns it into frozen dataclasses or raises
one :class:`EdgesmithError` line, so that nothing downstream trusts a number nobody checked:
latencies must be finite, positive and ordered (min <= p50 <= p90 <= p99 <= max) and below an
hour; accuracy is a fraction in [0, 1] backed by a positive image count; a sha256 is 64 hex
digits; the store folder is one plain name beside the JSON file.

Version history: 1, the first bench document; 2 adds ``store`` (the content-addressed copies of
the benched model files, ``<store>/<sha256>.<format>`` beside the JSON) and this validation.
Version 1 documents are still read (they have no store).

Units: ``latency_ms`` in milliseconds; ``accuracy`` is the fraction of eval images classified
correctly (0..1), as in every manifest; every accuracy *tolerance* in edgesmith is in
percentage points.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

from edgesmith.core.errors import EdgesmithError
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
    "load_rss_mb", "input", "labels", "metadata", "notes", "tflm", "per_class", "confusion",
    "machine", "budgets",
)  # fmt: skip
_WRITTEN_WHEN_SET = ("tflm", "per_class", "confusion", "budgets")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_STORE = re.compile(r"[A-Za-z0-9._-]+")


@dataclasses.dataclass(frozen=True)
class Latency:
    """Latency percentiles of one model, in milliseconds, over ``runs`` timed runs.

    ``std`` is their standard deviation.
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
        latency: the latency summary.
        accuracy: fraction correct on ``num_eval`` images, or None without data.
        num_eval: images behind ``accuracy`` (0 without data).
        runtime: ``litert``, ``onnxruntime`` or ``tflm``.
        size_bytes: the model file's size; ``gzip_bytes`` gzipped (level 9): what pruning buys
            on the wire.
        load_ms: load time; ``first_inference_ms`` the first (untimed) inference's.
        rounds: interleaved timing rounds.
        throughput_ips: images per second at ``batch`` (from the mean latency).
        macs: multiply-accumulates per image (from the embedded metadata), or None.
        gmacs_per_s: achieved GMAC/s at the median latency, or None without ``macs``.
        peak_rss_mb: the bench process's peak resident memory; ``load_rss_mb`` what loading
            this model added.
        input: the model's input record (shape, dtype, normalisation) as the runtime read it.
        labels: class names in output order, when the file carries them.
        metadata: where the input record came from (``embedded``, ``artifact``, ``none``).
        notes: what a user must know about the numbers (fall-backs, missing metadata).
        per_class: accuracy per class name; ``confusion`` the confusion matrix (with data).
        machine: the ``machine`` record it was measured on.
        tflm: TFLite Micro's measured arena and what its host latency means (``--provider
            tflm``).
        budgets: the device profile's verdicts (``--device``): budget -> record with ``ok``.
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
    input: dict[str, Any] | None = None
    labels: tuple[str, ...] | None = None
    metadata: str | None = None
    notes: tuple[str, ...] = ()
    per_class: dict[str, Any] | None = None
    confusion: list[list[int]] | None = None
    machine: dict[str, Any] | None = None
    tflm: dict[str, Any] | None = None
    budgets: dict[str, dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result's JSON record (the keys ``edgesmith bench`` has always written)."""
        record: dict[str, Any] = {}
        for name in _RESULT_ORDER:
            value = getattr(self, name)
            if name in _WRITTEN_WHEN_SET and value is None:
                continue
            if name == "latency":
                record["latency_ms"] = value.to_dict()
            elif isinstance(value, tuple):
                record[name] = list(value)
            else:
                record[name] = value
        return record


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """The run's settings a re-measurement must repeat.

    Threads, batch, provider, XNNPACK, and the normalisation given for files without edgesmith
    metadata.
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
    """

    schema_version: int
    data: str | None
    settings: BenchSettings
    machine: dict[str, Any]
    results: tuple[BenchResult, ...]
    store: str | None
    created: str | None = None
    device: dict[str, Any] | None = None
    host: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The document as ``edgesmith bench --json`` writes it."""
        record: dict[str, Any] = {
            "schema": SCHEMA,
            "schema_version": self.schema_version,
            "created": self.created,
            "data": self.data,
            "settings": self.settings.to_dict(),
            "machine": self.machine,
            "results": [r.to_dict() for r in self.results],
        }
        if self.store is not None:
            record["store"] = self.store
        if self.device is not None:
            record["device"] = self.device
        if self.host is not None:
            record["host"] = self.host
        return record

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
    """Validate a decoded bench document and return its typed form.

    Raises:
        EdgesmithError: one line naming the first invalid field and what was expected.
    """
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
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
    settings = _settings(document.get("settings"), f"{where}: settings")
    machine = document.get("machine")
    if not isinstance(machine, dict):
        raise EdgesmithError(f"{where}: machine must be an object")
    store = document.get("store")
    if store is not None and (
        not isinstance(store, str) or not _STORE.fullmatch(store) or store in (".", "..")
    ):
        raise EdgesmithError(
            f"{where}: store must be one folder name beside the JSON file. "
            f"Received: {_short(store)}"
        )
    parsed = tuple(_result(r, f"{where}: results[{i}]") for i, r in enumerate(results))
    device = document.get("device")
    if device is not None and not isinstance(device, dict):
        raise EdgesmithError(f"{where}: device must be an object or null")
    created = _optional_str(document.get("created"), f"{where}: created")
    host = _optional_str(document.get("host"), f"{where}: host")
    return BenchDocument(version, data, settings, machine, parsed, store, created, device, host)


def _settings(record: object, where: str) -> BenchSettings:
    if record is None:
        record = {}
    if not isinstance(record, dict):
        raise EdgesmithError(f"{where} must be an object")
    xnnpack = record.get("xnnpack", True)
    if not isinstance(xnnpack, bool):
        raise EdgesmithError(f"{where}.xnnpack must be true or false. Received: {_short(xnnpack)}")
    return BenchSettings(
        threads=_threads(record.get("threads", 1), f"{where}.threads"),
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


def _timing(record: object, where: str) -> TimingPlan | None:
    if record is None:
        return None
    if not isinstance(record, dict):
        raise EdgesmithError(f"{where} must be an object or null")
    try:
        return TimingPlan.from_dict(record)
    except EdgesmithError as exc:
        raise EdgesmithError(f"{where}: {exc}") from None


def _result(record: object, where: str) -> BenchResult:
    if not isinstance(record, dict):
        raise EdgesmithError(f"{where} must be an object")
    path = record.get("path")
    if not isinstance(path, str) or not path:
        raise EdgesmithError(f"{where}.path must be a non-empty string")
    model_file = record.get("model_file", path)
    if not isinstance(model_file, str) or not model_file:
        raise EdgesmithError(f"{where}.model_file must be a non-empty string")
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
    if isinstance(num_eval, bool) or not isinstance(num_eval, int) or num_eval < 0:
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
            raise EdgesmithError(f"{where}.accuracy needs num_eval >= 1 images behind it")
    return BenchResult(
        path=path,
        model_file=model_file,
        sha256=sha,
        format=fmt,
        provider=_optional_str(record.get("provider"), f"{where}.provider"),
        threads=_threads(record.get("threads", 1), f"{where}.threads"),
        batch=_positive_int(record.get("batch", 1), f"{where}.batch"),
        latency=_latency(record.get("latency_ms"), f"{where}.latency_ms"),
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
        throughput_ips=_optional_number(record.get("throughput_ips"), f"{where}.throughput_ips"),
        macs=_optional_number(record.get("macs"), f"{where}.macs", int),
        gmacs_per_s=_optional_number(record.get("gmacs_per_s"), f"{where}.gmacs_per_s"),
        peak_rss_mb=_optional_number(record.get("peak_rss_mb"), f"{where}.peak_rss_mb"),
        load_rss_mb=_optional_number(
            record.get("load_rss_mb"), f"{where}.load_rss_mb", low=-math.inf
        ),
        input=_optional_object(record.get("input"), f"{where}.input"),
        labels=_optional_names(record.get("labels"), f"{where}.labels"),
        metadata=_optional_str(record.get("metadata"), f"{where}.metadata"),
        notes=_optional_names(record.get("notes"), f"{where}.notes") or (),
        per_class=_optional_object(record.get("per_class"), f"{where}.per_class"),
        confusion=_optional_list(record.get("confusion"), f"{where}.confusion"),
        machine=_optional_object(record.get("machine"), f"{where}.machine"),
        tflm=_optional_object(record.get("tflm"), f"{where}.tflm"),
        budgets=_optional_object(record.get("budgets"), f"{where}.budgets"),
    )


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


def _optional_object(value: object, where: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise EdgesmithError(f"{where} must be an object or null. Received: {_short(value)}")
    return value


def _optional_list(value: object, where: str) -> list | None:
    if value is not None and not isinstance(value, list):
        raise EdgesmithError(f"{where} must be a list or null. Received: {_short(value)}")
    return value


def _optional_names(value: object, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EdgesmithError(f"{where} must be a list of strings. Received: {_short(value)}")
    return tuple(value)


def _latency(record: object, where: str) -> Latency:
    if not isinstance(record, dict):
        raise EdgesmithError(f"{where} must be an object with p50, p90, p99, mean, min, max, runs")
    values = {}
    for key in LATENCY_KEYS:
        value = record.get(key)
        if not _finite(value) or not 0.0 < value <= MAX_LATENCY_MS:
            raise EdgesmithError(
                f"{where}.{key} must be a finite number of milliseconds in "
                f"(0, {MAX_LATENCY_MS:g}]. "
                f"Received: {_short(value)}"
            )
        values[key] = float(value)
    ordered = [values[k] for k in ("min", "p50", "p90", "p99", "max")]
    if any(a > b * (1 + 1e-9) for a, b in zip(ordered[:-1], ordered[1:], strict=True)) or not (
        values["min"] <= values["mean"] * (1 + 1e-9)
        and values["mean"] <= values["max"] * (1 + 1e-9)
    ):
        raise EdgesmithError(
            f"{where} is inconsistent: expected min <= p50 <= p90 <= p99 <= max and min <= mean "
            f"<= max. Received: {', '.join(f'{k} {values[k]:g}' for k in LATENCY_KEYS)}"
        )
    runs = _positive_int(record.get("runs"), f"{where}.runs")
    std = _optional_number(record.get("std", 0.0), f"{where}.std")
    return Latency(runs=runs, std=std or 0.0, **values)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EdgesmithError(f"{where} must be a whole number >= 1. Received: {_short(value)}")
    return value


def _threads(value: object, where: str) -> int | None:
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
