"""``edgesmith bench``: load time, first inference, latency percentiles, throughput, accuracy.

Every model given is loaded in one process, warmed up, and timed in interleaved rounds (see
``timing.py``); accuracy is then measured through the same runner. The result is one JSON
document (schema ``edgesmith.bench``, see ``bench_schema``), which ``edgesmith check`` reads
back as a baseline.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import gzip
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgesmith.core.artifacts import sha256_file
from edgesmith.core.config import Config, setting
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.outputs import record_written
from edgesmith.core.progress import Reporter
from edgesmith.runtime.accuracy import evaluate
from edgesmith.runtime.bench_schema import (
    SCHEMA_VERSION,
    BenchDocument,
    BenchResult,
    BenchSettings,
    Latency,
    Machine,
    ModelInput,
    TflmRecord,
)
from edgesmith.runtime.emulation import TARGETS as EMULATION_TARGETS
from edgesmith.runtime.machine import (
    available_cpus,
    machine_info,
    parse_cpus,
    peak_rss_mb,
    pin_to,
    rss_mb,
)
from edgesmith.runtime.model import Model, load
from edgesmith.runtime.source import locate
from edgesmith.runtime.stats import summarize
from edgesmith.runtime.timing import Step, TimingPlan, measure

MAX_THREADS = 4 * (os.cpu_count() or 1)
"""More threads than this only oversubscribe the CPUs (and 100,000 crashed a runtime)."""
MAX_BATCH = 4096
"""Images per call: far past any edge batch, and far below what would exhaust memory."""
MEASURES = ("latency", "instructions")
"""The costs bench records and check gates: wall-clock, or instructions counted under valgrind."""


@dataclasses.dataclass(frozen=True)
class BenchConfig(Config):
    """How to load and drive the models (the timing minimums are in :class:`TimingPlan`).

    Attributes:
        threads: runtime threads (1 by default: repeatable; ``None`` is the runtime's choice).
        batch: images per timed inference.
        provider: see :func:`edgesmith.runtime.load`.
        xnnpack: LiteRT's XNNPACK delegate on (default) or off.
        affinity: CPUs to pin to, taskset style (``0``, ``0,1``, ``0-3``), or ``None``.
        eval_batch: images per runtime call when measuring accuracy.
        timing: warm-up and minimum runs/seconds.
        foreign_normalization: how raw pixels map to the input of a file that carries no
            edgesmith metadata (``raw``, ``unit``, ``scale=..,mean=..,std=..``); files that
            carry metadata keep their own.
        emulate: the CPU to bench on by emulation (``x86-64-avx2``, ``aarch64``), or ``None``
            for this one.
        measure: ``latency`` (wall-clock, always recorded) or ``instructions`` (also counts
            instructions per inference, under valgrind on this machine).
    """

    threads: int | None = setting(1, "runtime threads", low=1, high=MAX_THREADS)
    batch: int = setting(1, "images per timed inference", metavar="B", low=1, high=MAX_BATCH)
    provider: str | None = setting(
        None,
        "onnx: cpu|cuda|tensorrt|auto (cuda/tensorrt fail where absent; auto takes the best "
        "present); tflite: cpu|xnnpack|delegate:/path/lib.so|compiled|compiled:gpu|tflm (tflm: "
        "TFLite Micro's interpreter, measured arena, host reference-kernel latency; default: cpu)",
        metavar="P",
    )
    xnnpack: bool = setting(
        True, "LiteRT builtin kernels instead of XNNPACK", flag="--no-xnnpack", negate=True
    )
    affinity: str | None = setting(
        None, "pin to CPUs, taskset style: 0 | 0,1 | 0-3", metavar="CPUS"
    )
    eval_batch: int = setting(64, "images per accuracy call", metavar="B", low=1, high=MAX_BATCH)
    timing: TimingPlan = setting(TimingPlan, "", flag="", factory=True)
    foreign_normalization: str | None = setting(
        None,
        "for files without edgesmith metadata (e.g. MLCommons' ResNet-8): how pixels 0..255 map "
        "to the model input: raw, unit or scale=S,mean=..,std=..",
        flag="--normalization",
        metavar="NORM",
    )
    emulate: str | None = setting(
        None,
        "bench on an emulated CPU (qemu-user): x86-64-avx2 = AVX2 without VNNI, aarch64 = "
        "Cortex-A72 (edgesmith device setup aarch64); accuracy is the target's, latency only "
        "the emulator's",
        metavar="TARGET",
        choices=EMULATION_TARGETS,
    )
    measure: str = setting(
        "latency",
        "latency = wall-clock; instructions = also instructions per inference (valgrind, "
        "deterministic; needs --threads 1)",
        choices=MEASURES,
    )

    def __post_init__(self) -> None:
        if isinstance(self.timing, dict):
            object.__setattr__(self, "timing", TimingPlan.from_dict(self.timing))
        super().__post_init__()
        if self.affinity is not None:
            parse_cpus(self.affinity)
        if self.foreign_normalization is not None:
            from edgesmith.core.normalization import parse_normalization

            parse_normalization(self.foreign_normalization)  # a typo fails before any load

    def settings(self) -> BenchSettings:
        """The settings record of the bench document."""
        names = (f.name for f in dataclasses.fields(BenchSettings))
        return BenchSettings(**{name: getattr(self, name) for name in names})


@dataclasses.dataclass
class Loaded:
    """A model opened for benchmarking, with what its opening cost."""

    given: str
    model: Model
    load_ms: float
    first_inference_ms: float
    load_rss_mb: float
    notes: list[str]
    step: Step


@dataclasses.dataclass
class BenchRun:
    """The bench document plus each model's per-round samples (for plots and the gate)."""

    document: BenchDocument
    rounds: list[list[np.ndarray]]

    @property
    def results(self) -> tuple[BenchResult, ...]:
        """Per-model results."""
        return self.document.results


def timing_images(model: Model, pixels: np.ndarray | None, batch: int) -> np.ndarray:
    """The model input for the timed runs: the first ``batch`` eval images, else seeded noise."""
    tensor = model.input_tensor
    if pixels is not None:
        picks = np.resize(np.arange(len(pixels)), batch)
        return model.prepare(pixels[picks])
    shape = (batch, *(d or 1 for d in tensor.shape[1:]))
    rng = np.random.default_rng(0)
    if model.normalization is not None or model.raw_input:
        return model.prepare(rng.integers(0, 256, size=shape, dtype=np.uint8))
    if np.issubdtype(tensor.dtype, np.integer):
        info = np.iinfo(tensor.dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(tensor.dtype)
    return rng.standard_normal(shape).astype(tensor.dtype)


def check_data_fits(model: Model, shape: tuple[int, ...], spec: str) -> None:
    """Refuse a dataset whose images the model cannot take, naming both shapes.

    Raises:
        EdgesmithError: when (H, W, C) differ.
    """
    want = tuple(model.input_tensor.shape[1:])
    if len(want) != len(shape) or any(w not in (None, s) for w, s in zip(want, shape, strict=True)):
        raise EdgesmithError(
            f"data {spec!r} has {'x'.join(map(str, shape))} images but {model.path.name} takes "
            f"{'x'.join('?' if d is None else str(d) for d in want)}"
        )


def import_runtime(given: str) -> None:
    """Import the runtime a model needs, so that ``load_ms`` is the model's and not the import's.

    Errors (a missing path, an unknown suffix) are left for :func:`load` to report.
    """
    try:
        fmt = locate(given).format
    except EdgesmithError:
        return
    if fmt == "tflite":
        import ai_edge_litert.interpreter  # noqa: F401
    else:
        import onnxruntime  # noqa: F401


def open_model(
    given: str, config: BenchConfig, pixels: np.ndarray | None = None, spec: str | None = None
) -> Loaded:
    """Load one model, time its load and first inference, and bind its timing input.

    Raises:
        EdgesmithError: from loading, or when the data's images do not fit the model.
    """
    import_runtime(given)
    before = rss_mb()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        model = load(
            given, threads=config.threads, provider=config.provider, xnnpack=config.xnnpack
        )
        load_ms = (time.perf_counter() - start) * 1000.0
        if model.metadata == "none" and config.foreign_normalization is not None:
            caught.clear()  # the missing-metadata warning no longer applies
            model = load(
                given,
                threads=config.threads,
                provider=config.provider,
                xnnpack=config.xnnpack,
                normalization=config.foreign_normalization,
            )
    if pixels is not None:
        check_data_fits(model, tuple(pixels.shape[1:]), spec or "")
    x = timing_images(model, pixels, config.batch)
    step = model.runner.step(x)
    start = time.perf_counter()
    step()
    first_ms = (time.perf_counter() - start) * 1000.0
    notes = [str(w.message) for w in caught]
    return Loaded(given, model, load_ms, first_ms, rss_mb() - before, notes, step)


def result_record(loaded: Loaded, rounds: list[np.ndarray], config: BenchConfig) -> BenchResult:
    """The bench document's result for one model (accuracy and machine filled in later)."""
    model = loaded.model
    latency = Latency(**summarize(np.concatenate(rounds)))
    data = model.path.read_bytes()
    macs = model.macs
    extra = getattr(model.runner, "record_extra", None)  # TFLM: measured arena, latency's meaning
    tflm = None if extra is None else TflmRecord.from_dict(extra()["tflm"], f"{model.path}: tflm")
    return BenchResult(
        path=loaded.given,
        model_file=str(model.path),
        sha256=sha256_file(model.path),
        format=model.format,
        runtime=model.runtime,
        provider=model.provider_used,
        threads=model.threads,
        batch=config.batch,
        size_bytes=len(data),
        gzip_bytes=len(gzip.compress(data, compresslevel=9, mtime=0)),
        load_ms=loaded.load_ms,
        first_inference_ms=loaded.first_inference_ms,
        latency=latency,
        rounds=len(rounds),
        throughput_ips=config.batch * 1000.0 / latency.mean,
        accuracy=None,
        num_eval=0,
        macs=macs,
        gmacs_per_s=(macs * config.batch / (latency.p50 / 1000.0) / 1e9) if macs else None,
        load_rss_mb=loaded.load_rss_mb,
        input=ModelInput.from_dict(model.input_spec, f"{model.path}: input"),
        labels=None if model.labels is None else tuple(model.labels),
        metadata=model.metadata,
        notes=tuple(loaded.notes),
        tflm=tflm,
    )


def benchmark(
    paths: Sequence[str | Path],
    *,
    data: str | None = None,
    config: BenchConfig | None = None,
    report: Reporter | None = None,
) -> BenchRun:
    """Measure every model given, interleaved, and their accuracy on ``data``.

    Args:
        paths: artifact directories or .tflite/.onnx files.
        data: a data spec for the timing inputs and the accuracy (``None``: seeded noise as
            input and no accuracy).
        config: threads, batch, provider, affinity and the timing plan.
        report: progress lines (stderr in the CLI).

    Returns:
        A :class:`BenchRun`; its ``document`` (a :class:`BenchDocument`) is what ``--json``
        writes (``document.to_dict()``).

    Raises:
        EdgesmithError: for bad paths, data, settings, or data that does not fit a model.
    """
    config = config or BenchConfig()
    report = report or (lambda line: None)
    if not paths:
        raise EdgesmithError("bench needs at least one model path")
    previous = available_cpus()
    if config.affinity is not None:
        pin_to(parse_cpus(config.affinity))
    try:
        return _benchmark(paths, data, config, report)
    finally:
        if config.affinity is not None:
            pin_to(previous)  # a library call leaves the process as it found it


def _benchmark(
    paths: Sequence[str | Path], data: str | None, config: BenchConfig, report: Reporter
) -> BenchRun:
    dataset = None
    if data is not None:
        from edgesmith.core.datasets import load_dataset

        dataset = load_dataset(data)
    pixels = dataset.x_eval if dataset is not None else None
    opened = []
    for given in paths:
        loaded = open_model(str(given), config, pixels, data)
        report(
            f"loaded {given}: {loaded.model.runtime}/{loaded.model.provider_used}, "
            f"{loaded.load_ms:.1f} ms, first inference {loaded.first_inference_ms:.2f} ms"
        )
        opened.append(loaded)
    plan = config.timing
    report(
        f"timing {len(opened)} model(s) interleaved: >= {plan.min_runs} runs and "
        f">= {plan.min_seconds:g} s each, batch {config.batch}, threads {config.threads}"
    )
    rounds = measure([o.step for o in opened], plan, report)
    results = [result_record(o, r, config) for o, r in zip(opened, rounds, strict=True)]
    if dataset is not None:
        for index, loaded in enumerate(opened):
            report(f"accuracy of {loaded.given} on {data} ({len(dataset.y_eval)} images)")
            scores = evaluate(
                loaded.model,
                dataset.x_eval,
                dataset.y_eval,
                class_names=list(dataset.labels),
                batch_size=config.eval_batch,
                report=report,
            )
            results[index] = dataclasses.replace(results[index], **scores)
    machine = Machine.from_dict(machine_info())
    peak = peak_rss_mb()
    results = [dataclasses.replace(r, peak_rss_mb=peak, machine=machine) for r in results]
    for loaded in opened:
        loaded.model.close()
    document = BenchDocument(
        schema_version=SCHEMA_VERSION,
        data=data,
        settings=config.settings(),
        machine=machine,
        results=tuple(results),
        store=None,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    return BenchRun(document, rounds)


def store_name(json_path: Path) -> str:
    """The store folder beside a bench JSON file: ``base.json`` -> ``base.models``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", json_path.stem or "bench") + ".models"


def save_baseline(document: BenchDocument, json_path: str | Path) -> Path:
    """Write the bench JSON and a content-addressed copy of each model file beside it.

    Each benched file is copied to ``<store>/<sha256>.<format>`` (``base.json`` ->
    ``base.models/``) and the document records ``store``; ``edgesmith check`` finds its
    reference there by sha256, so replacing or deleting the original file later cannot change
    what the baseline compares with. Copies are written to a temporary name and renamed, and the
    JSON last, so an interrupted save never leaves a baseline pointing at a half-written file.

    Returns:
        The store folder.

    Raises:
        EdgesmithError: when a file cannot be read or written, or changed while benched.
    """
    json_path = Path(json_path)
    store = json_path.parent / store_name(json_path)
    try:
        store.mkdir(parents=True, exist_ok=True)
        for result in document.results:
            target = store / f"{result.sha256}.{result.format}"
            if target.is_file() and sha256_file(target) == result.sha256:
                continue
            tmp = target.with_name(target.name + ".tmp")
            shutil.copyfile(result.model_file, tmp)
            if sha256_file(tmp) != result.sha256:
                tmp.unlink()
                raise EdgesmithError(
                    f"{result.model_file} changed while it was benched (sha256 differs); "
                    "bench it again"
                )
            os.replace(tmp, target)
        text = json.dumps(document.replace(store=store.name).to_dict(), indent=2) + "\n"
        tmp_json = json_path.with_name(json_path.name + ".tmp")
        tmp_json.write_text(text, encoding="utf-8")
        os.replace(tmp_json, json_path)
        record_written(json_path)
    except OSError as exc:
        raise EdgesmithError(f"cannot write {json_path}: {exc.strerror or exc}") from None
    return store
