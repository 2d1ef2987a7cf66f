"""``export()``: a Keras artifact in, one verified artifact directory per format out.

For each format: build the file, embed the metadata a device needs (labels, input record,
output record, MACs), write it (plus the C array when asked), report its ops, run the target
check, run the parity check with the file's own runtime, and publish ``<out>/<format>/`` with a
manifest. Everything that can be checked without TensorFlow (format names, options, the source
manifest, output directories) is checked first, so bad input costs milliseconds and leaves
nothing behind.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesmith.core.artifacts import Artifact, ArtifactWriter, check_output_dir
from edgesmith.core.errors import CheckFailed, EdgesmithError
from edgesmith.core.manifest import CArray, InputRecord, Metrics, Ops, OutputRecord, Sparse, Target
from edgesmith.core.profiles import FIRMWARE_TARGETS
from edgesmith.core.progress import Reporter, stderr_reporter
from edgesmith.export.formats import FORMATS, QAT_FORMATS, ExportFormat, parse_formats
from edgesmith.export.options import ExportOptions
from edgesmith.export.source import SourceInfo, read_source

if TYPE_CHECKING:
    from edgesmith.export.litert_recipes import RecipeSpec

# What a Cortex-M firmware target compiles: the converter's full-integer file, int8 in and out.
FIRMWARE_FORMATS = ("tflite-int8",)
SPARSE_INT8_NOTE = (
    "sparse int8 weights fail to prepare under LiteRT's default XNNPACK delegate; run with the "
    "builtin kernels (edgesmith.runtime.load(..., xnnpack=False), i.e. "
    "OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)"
)
SPARSE_FLOAT_NOTE = "DENSIFY ops restore the weights at load; runs under XNNPACK and the builtins"
SPARSE_NONE_NOTE = "no tensor was sparse enough to encode; runs wherever the dense file runs"


def _sparse_note(encoded: int, builtin_only: bool) -> str:
    if not encoded:
        return SPARSE_NONE_NOTE
    return SPARSE_INT8_NOTE if builtin_only else SPARSE_FLOAT_NOTE


class FailedCheck(str, enum.Enum):
    """Which check a format failed (its message says how)."""

    PARITY = "parity"
    TARGET = "target"


@dataclasses.dataclass
class FormatResult:
    """The outcome of one format: its published artifact, or why it was not published.

    Attributes:
        name: the format name.
        metrics: parity, sizes and accuracy (also when the check failed).
        artifact: the published artifact (None when a check failed without
            ``allow_mismatch``).
        failure: the failed check's message, or None.
        seconds: wall time of conversion, checks and writing.
        failed_check: which check failed (also with ``allow_mismatch``), or None.
    """

    name: str
    metrics: Metrics
    artifact: Artifact | None = None
    failure: str | None = None
    seconds: float = 0.0
    failed_check: FailedCheck | None = None


def export(
    source_dir: str | Path,
    formats: str | list[str],
    out: str | Path,
    *,
    report: Reporter | None = None,
    **options: Any,
) -> list[Artifact]:
    """Export a Keras artifact to each format and check every file against the source.

    Args:
        source_dir: the Keras artifact (from train, import or compress).
        formats: format names, as a list or comma-separated (``all`` for every format).
        out: directory that receives one artifact directory per format (``out/<format>``).
        report: receives progress lines (stderr by default).
        **options: :class:`~edgesmith.export.options.ExportOptions` fields, e.g.
            ``raw_input=True``, ``io_dtype="uint8"``, ``calibration_samples=500``,
            ``opset=17``, ``allow_mismatch=False``, ``target="tflm"``, ``c_array=True``.

    Returns:
        The published artifacts, in the order of ``formats``.

    Raises:
        EdgesmithError: for bad input (exit 2), before any file is written.
        CheckFailed: when a file fails its parity or target check (unless ``allow_mismatch``
            for parity); the other formats are still exported and published, the failing one
            is not. ``exc.results`` holds every format's :class:`FormatResult`.
    """
    results = export_formats(source_dir, formats, out, report=report, **options)
    failed = [r for r in results if r.failure]
    if failed:
        error = CheckFailed("; ".join(r.failure for r in failed if r.failure))
        error.results = results  # type: ignore[attr-defined]
        raise error
    return [r.artifact for r in results if r.artifact is not None]


def prepare(
    source_dir: str | Path, formats: str | list[str], out: str | Path, options: ExportOptions
) -> tuple[SourceInfo, list[ExportFormat], RecipeSpec | None]:
    """Check everything that needs no TensorFlow: source, formats, combinations, output dirs.

    Returns:
        The source, the formats, and the ``--quantizer-recipe`` as read and checked (or None).

    Raises:
        EdgesmithError: naming the first problem.
    """
    chosen = parse_formats(formats)
    source = read_source(source_dir)
    names = [f.name for f in chosen]
    if options.sparse:
        bad = [f.name for f in chosen if not f.sparse_ok]
        if bad:
            ok = ", ".join(f.name for f in FORMATS.values() if f.sparse_ok)
            raise EdgesmithError(f"--sparse applies to {ok}; not to {', '.join(bad)}")
    if options.target is not None and options.target != "int8-only":
        bad = [f.name for f in chosen if f.file_format != "tflite"]
        if bad:
            raise EdgesmithError(
                f"--target {options.target} runs .tflite files only; drop {', '.join(bad)} "
                "from --format"
            )
    if options.target in FIRMWARE_TARGETS:  # no cross compiler, qemu or TFLM: say so first
        from edgesmith.export.firmware.check import check_available

        bad = [f.name for f in chosen if f.name not in FIRMWARE_FORMATS]
        if bad:
            raise EdgesmithError(
                f"--target {options.target} builds a firmware from an int8 file: use --format "
                f"{', '.join(FIRMWARE_FORMATS)}, not {', '.join(bad)}"
            )
        check_available(options.target, options.tflm_sources)
    if options.target is not None and options.target.startswith("ethos-u"):
        from edgesmith.export.vela import INSTALL_HINT, vela_available

        if not vela_available():
            raise EdgesmithError(INSTALL_HINT)
    recipe = None
    if options.quantizer_recipe is not None or any(f.quantizer for f in chosen):
        from edgesmith.export.litert_export import check_request

        recipe = check_request(chosen, options, source.artifact.id)  # package, recipe: in ms
    if options.check_on:  # no qemu or aarch64 env: say so before anything is converted
        from edgesmith.export.emulated_parity import check_available

        check_available(options.check_on)
    if source.qat:
        bad = [n for n in names if n not in QAT_FORMATS]
        if bad:
            raise EdgesmithError(
                f"{source.artifact.path} is a QAT model: it exports to {', '.join(QAT_FORMATS)} "
                f"(its learned int8 ranges); not to {', '.join(bad)}"
            )
        if options.raw_input:
            raise EdgesmithError(
                "--raw-input is not supported for QAT models: their first quantiser learned the "
                "range of normalised inputs; train with --normalization raw instead"
            )
    out = Path(out)
    if out.is_file():
        raise EdgesmithError(f"--out {out} is a file; expected a directory")
    for name in names:
        check_output_dir(out / name)
        partial = out / f"{name}.partial"
        if partial.exists():
            raise EdgesmithError(f"{partial} exists (an interrupted export?); remove it first")
    return source, chosen, recipe


def export_formats(
    source_dir: str | Path,
    formats: str | list[str],
    out: str | Path,
    *,
    report: Reporter | None = None,
    **options: Any,
) -> list[FormatResult]:
    """Like :func:`export`, but return every format's result instead of raising on a failure.

    Raises:
        EdgesmithError: for bad input, or a converter that cannot convert the model.
    """
    report = report or stderr_reporter()
    opts = ExportOptions.from_dict(options)
    source, chosen, recipe = prepare(source_dir, formats, out, opts)
    out = Path(out)
    existed = out.exists()
    try:
        return _run(source, chosen, out, opts, report, recipe)
    finally:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def _run(
    source: SourceInfo,
    chosen: list[ExportFormat],
    out: Path,
    opts: ExportOptions,
    report: Reporter,
    recipe: RecipeSpec | None = None,
) -> list[FormatResult]:
    if opts.check_on:  # the emulated children start now: their slow start-up overlaps the work
        from edgesmith.export.emulated_parity import EmulatedCheckers

        with EmulatedCheckers(opts.check_on, report) as emulated:
            return _run_formats(source, chosen, out, opts, report, emulated, recipe)
    return _run_formats(source, chosen, out, opts, report, None, recipe)


def _run_formats(source, chosen, out, opts, report, emulated, recipe) -> list[FormatResult]:
    from edgesmith.export.builders import Plan
    from edgesmith.export.calibration import calibration_inputs
    from edgesmith.export.raw_input import with_raw_input
    from edgesmith.export.source import load_eval_data, load_source_model

    needs_calibration = any(f.integer for f in chosen)
    data = load_eval_data(
        source,
        spec=opts.data,
        calibration_samples=opts.calibration_samples,
        max_eval=opts.max_eval,
        needs_calibration=needs_calibration,
    )
    model, read_as = load_source_model(source)
    report(
        f"source {source.artifact.path} ({source.artifact.technique}); data "
        f"{data.spec}: {len(data.calibration)} calibration / {len(data.x_eval)} eval images"
    )
    reference = _reference_outputs(model, data.x_eval, source)
    stats = _model_stats(model, source)
    fold = None
    if opts.raw_input:
        model, fold = with_raw_input(model, source.norm)
        report(f"raw input: normalisation folded in ({fold})")
    plan = Plan(
        model=model,
        calibration=calibration_inputs(data.calibration, source.norm, opts.raw_input),
        options=opts,
        qat=source.qat,
        keras3=_keras3_route(source, read_as, opts, chosen, report),
        read_as=read_as,
    )
    if recipe is not None:  # the --quantizer-recipe prepare() read and checked, built as is
        from edgesmith.export.litert_export import CHECKED_RECIPE

        plan.cache[CHECKED_RECIPE] = recipe
    results = []
    for fmt in chosen:
        report(f"{fmt.name}: converting")
        results.append(
            _export_one(
                fmt, plan, source, data, reference, stats, out, opts, fold, report, emulated
            )
        )
    return results


def _keras3_route(
    source: SourceInfo,
    read_as: str,
    opts: ExportOptions,
    chosen: list[ExportFormat],
    report: Reporter,
):
    """The source file for Keras 3's own export, when it saved the file and may convert it."""
    from edgesmith.export.builders import KERAS3_EXPORTED
    from edgesmith.export.tflite import Keras3File, keras3_export_backend
    from edgesmith.tfkeras.model_safety import model_code_trusted

    converter_tflite = [f.name for f in chosen if f.name in KERAS3_EXPORTED]
    if read_as != "keras3-rebuilt" or not opts.keras3_export or not converter_tflite:
        return None
    if opts.raw_input:
        report("Keras 3 file: --raw-input folds in tf_keras, so every format uses the rebuild")
        return None
    backend = keras3_export_backend()
    if backend != "tensorflow":
        report(f"Keras 3 runs on {backend} here; its LiteRT export needs TensorFlow: rebuilt")
        return None
    report(f"Keras 3 file: {', '.join(converter_tflite)} by Keras 3's model.export")
    return Keras3File(source.artifact.model_path, trusted=model_code_trusted(None))


def _converted_from(fmt: ExportFormat, plan) -> str:
    """What the file was converted from: ``keras3-export``, ``keras3-rebuilt`` or ``tf_keras``."""
    from edgesmith.export.builders import KERAS3_EXPORTED

    keras3 = plan.keras3 is not None and fmt.name in KERAS3_EXPORTED
    return "keras3-export" if keras3 else plan.read_as


def _reference_outputs(model, pixels: np.ndarray, source: SourceInfo) -> np.ndarray:
    outputs = []
    for start in range(0, len(pixels), 256):
        batch = source.norm.apply(pixels[start : start + 256])
        outputs.append(np.asarray(model(batch, training=False), dtype=np.float32))
    return np.concatenate(outputs)


def _model_stats(model, source: SourceInfo) -> dict[str, int]:
    metrics = source.artifact.metrics
    if metrics.macs is not None and metrics.params is not None:
        return {"macs": metrics.macs, "params": metrics.params}
    from edgesmith.tfkeras.model_stats import count_macs, count_params

    return {"macs": count_macs(model), "params": count_params(model)}


def _export_one(
    fmt: ExportFormat,
    plan,
    source: SourceInfo,
    data,
    reference: np.ndarray,
    stats: dict[str, int],
    out: Path,
    opts: ExportOptions,
    fold: str | None,
    report: Reporter,
    emulated=None,
) -> FormatResult:
    from edgesmith.export.builders import BUILDERS
    from edgesmith.export.litert_export import record_key

    started = time.perf_counter()
    built = BUILDERS[fmt.name](plan)
    try:
        result = _publish(
            built, fmt, source, data, reference, stats, out, opts, fold, report, emulated,
            quantizer=plan.cache.get(record_key(fmt.name)),  # the LiteRT Quantizer's record
            converted_from=_converted_from(fmt, plan),
        )  # fmt: skip
    except _Unpublished as unpublished:
        result = unpublished.result
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def _publish(
    built, fmt, source, data, reference, stats, out, opts, fold, report, emulated=None,
    quantizer: dict[str, Any] | None = None, converted_from: str = "tf_keras",
) -> FormatResult:  # fmt: skip
    from edgesmith.export.parity import ParityCheck, check_parity
    from edgesmith.export.sizes import sizes

    output = OutputRecord(kind=source.output_kind, shape=(source.num_classes,))
    with ArtifactWriter(out / fmt.name) as writer:
        model_bytes, ops_report, input_spec = _finish_file(
            built, fmt, source, opts, output.to_dict(), stats
        )
        model_path = writer.dir / fmt.model_file
        model_path.write_bytes(model_bytes)
        files = [fmt.model_file]
        c_array = None
        if opts.c_array and fmt.file_format == "tflite":
            from edgesmith.export.c_array import write_c_array

            files += write_c_array(model_bytes, writer.dir)
            c_array = CArray(source="model_data.cc", header="model_data.h", symbol="g_model_data")
        try:
            target = _check_target(ops_report, model_path, fmt, opts)
        except CheckFailed as exc:
            report(str(exc))
            failed = FormatResult(
                fmt.name,
                Metrics.from_dict(sizes(model_bytes)),
                failure=str(exc),
                failed_check=FailedCheck.TARGET,
            )
            raise _Unpublished(failed) from None
        target_record = None
        if target is not None:
            files += target.pop("files", [])  # Ethos-U: the Vela-compiled file
            target_record = Target.from_dict(target)
        encoded = int(ops_report.get("sparse_tensors", 0)) if opts.sparse else 0
        builtin_only = bool(encoded and fmt.integer)
        sparse = None
        if opts.sparse:
            sparse = Sparse(
                encoded_tensors=encoded,
                xnnpack=not builtin_only,
                runtime=_sparse_note(encoded, builtin_only),
            )
        runner = _parity_runner(opts, fmt)
        report(f"{fmt.name}: parity check on {len(data.x_eval)} images ({runner or 'default'})")
        check = ParityCheck(
            fmt.tolerance,
            source.output_kind,
            xnnpack=not builtin_only,
            provider=runner,
            max_accuracy_drop=opts.max_accuracy_drop,
        )
        metrics, outputs = check_parity(model_path, data.x_eval, data.y_eval, reference, check)
        if runner is not None:
            metrics["parity_runner"] = runner
        if emulated is not None and metrics["parity"] == "pass":
            _check_emulated(
                emulated, model_path, fmt, data, reference, outputs, metrics, check, report
            )
        metrics.update(sizes(model_bytes))
        metrics.update(stats)
        metrics["source_accuracy"] = source.artifact.metrics.accuracy
        _report_line(fmt.name, metrics, report)
        if opts.target in FIRMWARE_TARGETS and metrics["parity"] == "pass":
            target = _run_firmware(model_path, fmt, data, writer.dir, opts, metrics, report)
            target.pop("files", None)  # hashed with the artifact, not part of its model id
            target_record = Target.from_dict(target)
        result = FormatResult(fmt.name, Metrics.from_dict(metrics))
        if metrics["parity"] == "fail":
            result.failed_check = FailedCheck.PARITY
            result.failure = (
                f"{fmt.name} fails its parity check against the source: "
                f"{', '.join(metrics['parity_failures'])} (pass --allow-mismatch to keep it)"
            )
            if not opts.allow_mismatch:
                raise _Unpublished(result)
        result.artifact = writer.commit(
            model_files=files,
            stage="export",
            technique=fmt.name,
            fmt=fmt.file_format,
            config={
                **opts.to_dict(),
                "format": fmt.name,
                "converted_from": converted_from,
                "source": str(source.artifact.path),
                "data": data.spec,
            },
            input_spec=InputRecord.from_dict(input_spec),
            labels=source.artifact.labels,
            dataset=source.artifact.manifest.dataset,
            metrics=result.metrics,
            parent=source.artifact.id,
            output=output,
            c_array=c_array,
            target=target_record,
            sparse=sparse,
            raw_input_fold=fold,
            ops=Ops.from_dict(_public_ops(ops_report)),
            quantizer=_quantizer_record(quantizer),
        )
        if opts.allow_mismatch:
            result.failure = None
        return result


def _check_emulated(
    emulated, path, fmt, data, reference, outputs, metrics, check, report: Reporter
) -> None:
    """Run the passed file's parity check again, as it ran here, on each emulated CPU."""
    from edgesmith.export.emulated_parity import merge, report_lines

    report(f"{fmt.name}: parity on emulated {', '.join(emulated.targets)}")
    records = emulated.check(path, data.x_eval, data.y_eval, reference, outputs, check)
    for line in report_lines(fmt.name, records):
        report(line)
    merge(metrics, records)


def _run_firmware(
    model_path: Path, fmt, data, folder: Path, opts, metrics: dict, report: Reporter
) -> dict:
    """A Cortex-M ``--target``: the firmware run on the first eval images; its target record.

    A firmware that fails its check leaves the file unpublished, as a failed target check.
    """
    from edgesmith.export.firmware.check import run_check, summary_line

    count = min(opts.firmware_images, len(data.x_eval))
    report(f"{fmt.name}: firmware for {opts.target} in QEMU on {count} images")
    try:
        target = run_check(
            model_path, opts.target, data.x_eval[:count], data.y_eval[:count], folder, fmt.name,
            max_accuracy_drop=opts.max_accuracy_drop, tflm_sources=opts.tflm_sources,
        )  # fmt: skip
    except CheckFailed as exc:
        report(str(exc))
        failed = FormatResult(
            fmt.name,
            Metrics.from_dict(metrics),
            failure=str(exc),
            failed_check=FailedCheck.TARGET,
        )
        raise _Unpublished(failed) from None
    report(summary_line(fmt.name, opts.target, target["firmware"]))
    return target


def _quantizer_record(record: dict[str, Any] | None):
    from edgesmith.core.manifest import Quantizer

    return None if record is None else Quantizer.from_dict(record)


class _Unpublished(Exception):
    """Raised inside the writer to discard a failing file; caught right away."""

    def __init__(self, result: FormatResult):
        super().__init__(result.failure)
        self.result = result


def _public_ops(report: dict[str, Any]) -> dict[str, Any]:
    from edgesmith.export.ops import public_report

    return public_report(report)


def _finish_file(built, fmt: ExportFormat, source: SourceInfo, opts, output, stats):
    """Embed metadata; return the file's bytes, its op report and its manifest input record."""
    from edgesmith.export.ops import onnx_op_report, tflite_op_report
    from edgesmith.runtime import onnx_with_metadata, tflite_with_metadata

    if fmt.file_format == "tflite":
        ops_report = tflite_op_report(built)
        tensor = ops_report["io"]["inputs"][0]
    else:
        ops_report = onnx_op_report(built)
        tensor = ops_report["io"]["inputs"][0]
    input_spec = {
        "shape": list(source.input_shape),
        "layout": "NHWC",
        "dtype": tensor["dtype"],
        "normalization": source.norm.to_dict(),
        "raw_input": bool(opts.raw_input),
        "quantization": tensor.get("quantization"),
    }
    document = {
        "labels": source.artifact.labels,
        "input": input_spec,
        "output": output,
        "macs": stats["macs"],
    }
    if fmt.file_format == "tflite":
        return tflite_with_metadata(built, document), ops_report, input_spec
    import onnx

    proto = onnx.ModelProto()
    proto.CopyFrom(built)  # the builders' cache keeps its own copy untouched
    onnx_with_metadata(proto, document)
    return proto.SerializeToString(), ops_report, input_spec


def _check_target(report, model_path: Path, fmt: ExportFormat, opts: ExportOptions):
    from edgesmith.export.targets import check_target

    return check_target(opts.target, report, model_path, fmt.name, vela=opts.vela)


def _parity_runner(opts: ExportOptions, fmt: ExportFormat) -> str | None:
    """The runtime provider that checks a file: TFLM for ``--target tflm`` when it is installed.

    A microcontroller file is checked by the interpreter it will run in; without tflite-micro
    the check runs in LiteRT, and the target record says the arena is an estimate.
    """
    if opts.target != "tflm" or fmt.file_format != "tflite":
        return None
    from edgesmith.runtime import tflm_available

    return "tflm" if tflm_available() else None


def _report_line(name: str, metrics: dict[str, Any], report: Reporter) -> None:
    report(
        f"{name}: {metrics['size_bytes']:,} B (gzip {metrics['gzip_bytes']:,}), accuracy "
        f"{metrics['accuracy']:.4f}, agreement {metrics['agreement']:.4f}, max abs diff "
        f"{metrics['max_abs_diff']:.3g}: parity {metrics['parity']}"
    )
