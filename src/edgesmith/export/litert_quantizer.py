"""The LiteRT Quantizer (``ai-edge-quantizer``) as export's second post-training backend.

LiteRT calls the TFLite converter's built-in quantisation legacy; its successor takes the
float32 .tflite the converter already wrote and applies a recipe to it (static W8A8 or W8A16,
dynamic, weight-only, blockwise, per-op or per-scope mixed). This module is the one place that
imports it, and only inside its functions, so ``edgesmith --help`` and the runtime never load
it. The quantizer brings no TensorFlow: it reads and writes flatbuffers and calibrates with
LiteRT's interpreter.

Activation ranges are calibrated by default as the converter does it, over all calibration
images (each tensor's smallest minimum and largest maximum: ``min-max``). The quantizer's own
default, an exponential moving average of the per-image ranges (``moving-average``, smoothing
0.95), is narrower than the extremes and clips the larger activations: on ResNet-8 its W8A8 and
W8A16 files came out 4.7x and 16x further from the float outputs (digits), and its W8A8 0.45
points less accurate on CIFAR-10, than with min-max (bench/RESULTS.md).

``validate()`` is the quantizer's own numerical check: each tensor of the quantised file
against the float file's, on a few calibration inputs. Its summary goes into the manifest beside
the parity check (which judges the file end to end, on the eval images, as a device runs it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.export.quiet import quiet_conversion

INSTALL_HINT = (
    'the LiteRT Quantizer formats need ai-edge-quantizer: pip install "edgesmith[export]"'
)
PACKAGE = "ai-edge-quantizer"
SIGNATURE_KEY = "serving_default"
VALIDATE_SAMPLES = 8  # inputs for validate(): it builds two interpreters per input
WORST_TENSORS = 5  # the lowest-SNR tensors the manifest names
THREADS = 1  # calibration and validation threads: exports run beside other work
CALIBRATION_RULES = ("min-max", "moving-average")


@dataclasses.dataclass(frozen=True)
class Quantized:
    """What one quantizer run produced.

    Attributes:
        model: the quantised .tflite's bytes.
        calibration_samples: inputs the activation ranges were calibrated on (0: the recipe
            needs none).
        calibration_rule: how their ranges were merged (:data:`CALIBRATION_RULES`), or None.
        validation: the summary of the quantizer's ``validate()`` (see :func:`summarise`).
    """

    model: bytes
    calibration_samples: int
    validation: dict[str, Any]
    calibration_rule: str | None = None


def available() -> bool:
    """Whether ai-edge-quantizer can be imported here (without importing it)."""
    from importlib.util import find_spec

    return find_spec("ai_edge_quantizer") is not None


def version() -> str | None:
    """The installed ai-edge-quantizer's version, or None."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version(PACKAGE)
    except PackageNotFoundError:
        return None


def require() -> None:
    """Raise the one-line install hint when the quantizer is missing.

    Raises:
        EdgesmithError: naming ``pip install "edgesmith[export]"``.
    """
    if not available():
        raise EdgesmithError(INSTALL_HINT)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_recipe(recipe: list[dict], where: str) -> None:
    """Have the quantizer load the recipe: an unknown algorithm, op or config is refused.

    Raises:
        EdgesmithError: one line with the quantizer's reason.
    """
    require()
    from ai_edge_quantizer import recipe_manager

    try:
        with quiet_conversion():
            recipe_manager.RecipeManager().load_quantization_recipe(recipe)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EdgesmithError(
            f"{where}: the LiteRT Quantizer refuses the recipe: {_first_line(exc)}"
        ) from None


def with_signature(model_bytes: bytes) -> bytes:
    """The file with a ``serving_default`` signature over its main subgraph, if it has none.

    The quantizer calibrates and validates through a signature runner; files written by older
    converters (MLCommons' reference ResNet-8, for one) carry no signature.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from edgesmith.export.ops import read_tflite

    model = read_tflite(model_bytes)
    if model.signatureDefs:
        return model_bytes
    graph = model.subgraphs[0]

    def tensor_maps(indices) -> list:
        maps = []
        for index in indices:
            entry = schema.TensorMapT()
            entry.name = graph.tensors[index].name
            entry.tensorIndex = int(index)
            maps.append(entry)
        return maps

    signature = schema.SignatureDefT()
    signature.signatureKey = SIGNATURE_KEY
    signature.subgraphIndex = 0
    signature.inputs = tensor_maps(graph.inputs)
    signature.outputs = tensor_maps(graph.outputs)
    model.signatureDefs = [signature]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def inline_buffers(model_bytes: bytes) -> bytes:
    """The file with every constant buffer inside the flatbuffer, none after it by offset.

    The quantizer writes some files (blockwise weights, for one) with their buffers appended
    after the flatbuffer and addressed by offset; repacking such a file through the schema's
    object API, as embedding the metadata does, would drop that data and leave offsets that
    point past the end.
    """
    import flatbuffers
    import numpy as np

    from edgesmith.export.ops import read_tflite

    model = read_tflite(model_bytes)
    appended = [buffer for buffer in model.buffers or [] if buffer.offset]
    if not appended:
        return model_bytes
    for buffer in appended:
        if buffer.offset + buffer.size > len(model_bytes):
            raise EdgesmithError("the LiteRT Quantizer wrote a buffer past the end of its file")
        chunk = model_bytes[buffer.offset : buffer.offset + buffer.size]
        buffer.data = np.frombuffer(chunk, dtype=np.uint8).copy()
        buffer.offset = 0
        buffer.size = 0
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _signature(model_bytes: bytes) -> tuple[str, str]:
    """(signature key, its one input's name) of a file with one signature."""
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_content=model_bytes).get_signature_list()
    if len(signatures) != 1:
        raise EdgesmithError(
            f"the LiteRT Quantizer needs a file with one signature; this one has "
            f"{len(signatures)} ({', '.join(signatures) or 'none'})"
        )
    key, spec = next(iter(signatures.items()))
    if len(spec["inputs"]) != 1:
        raise EdgesmithError(
            f"the LiteRT Quantizer formats handle single-input models; signature {key!r} takes "
            f"{len(spec['inputs'])}"
        )
    return key, spec["inputs"][0]


def quantize(
    float_model: bytes,
    recipe: list[dict],
    calibration: np.ndarray | None,
    *,
    calibration_rule: str = "min-max",
    validate_samples: int = VALIDATE_SAMPLES,
    where: str = "the LiteRT Quantizer",
) -> Quantized:
    """Apply ``recipe`` to a float32 .tflite, calibrating on ``calibration`` where it must.

    Args:
        float_model: the float32 .tflite's bytes (a signature is added if it has none).
        recipe: the quantizer's recipe (``export/litert_recipes.py``).
        calibration: float32 model inputs (N, H, W, C); needed by static recipes.
        calibration_rule: ``min-max`` (all images' extremes, as the converter) or
            ``moving-average`` (the quantizer's default).
        validate_samples: how many calibration inputs ``validate()`` compares on (0: skip it).
        where: the format's name, for messages.

    Returns:
        The quantised file, the calibration count and the validation summary.

    Raises:
        EdgesmithError: when the quantizer is missing, needs calibration data that was not
            given, or fails on the model (its first line).
    """
    require()
    from ai_edge_quantizer import quantizer as aeq

    float_model = with_signature(float_model)
    key, input_name = _signature(float_model)
    inputs = [] if calibration is None else [x[None].astype(np.float32) for x in calibration]
    try:
        with quiet_conversion():
            runner = aeq.Quantizer(float_model, recipe)
            calibrated = None
            if runner.need_calibration:
                if not inputs:
                    raise EdgesmithError(f"{where}: a static recipe needs calibration data")
                samples = {key: [{input_name: x} for x in inputs]}
                calibrated = _calibrate(float_model, recipe, samples, calibration_rule)
            result = runner.quantize(calibrated, enable_progress_report=False)
            validation = {}
            if validate_samples and inputs:
                test = {key: [{input_name: x} for x in inputs[:validate_samples]]}
                compared = runner.validate(
                    test,
                    error_metrics=[aeq.ValidationErrorMetric.MSE, aeq.ValidationErrorMetric.SNR],
                    num_threads=THREADS,
                )
                validation = summarise(compared.get_signature_comparison_result(key))
                validation["samples"] = len(test[key])
    except EdgesmithError:
        raise
    except Exception as exc:  # the quantizer raises ValueError, RuntimeError, KeyError...
        raise EdgesmithError(
            f"{where}: the LiteRT Quantizer failed on the model: {_first_line(exc)}"
        ) from None
    return Quantized(
        model=inline_buffers(bytes(result.quantized_model)),
        calibration_samples=len(inputs) if calibrated is not None else 0,
        validation=validation,
        calibration_rule=calibration_rule if calibrated is not None else None,
    )


def _calibrate(float_model: bytes, recipe: list[dict], samples: dict, rule: str) -> dict:
    """Activation ranges (QSVs) of every tensor the recipe quantises, merged by ``rule``."""
    from ai_edge_quantizer import calibrator, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    if rule not in CALIBRATION_RULES:
        raise EdgesmithError(f"calibration rule must be one of {CALIBRATION_RULES}: {rule!r}")
    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(recipe)
    merge = {"min-max": qsv_utils.min_max_update}.get(rule)
    extra = {} if merge is None else {"qsv_update_func": merge}
    calib = calibrator.Calibrator(float_model, num_threads=THREADS, **extra)
    calib.calibrate(samples, manager)
    return calib.get_model_qsvs()


def summarise(compared: Any) -> dict[str, Any]:
    """The manifest's summary of one signature's ``validate()`` result.

    Returns:
        ``metrics`` (``mse``, ``snr``: the quantizer's mean squared error and its signal-to-
        noise power ratio, signal / noise, not in dB), ``output`` (per output tensor), and
        ``lowest_snr``: the intermediate tensors with the lowest SNR, worst first.
    """

    def rounded(values: dict[str, float]) -> dict[str, float]:
        return {name: float(f"{value:.6g}") for name, value in values.items()}

    inner = compared.intermediate_tensors
    ranked = sorted(inner.items(), key=lambda item: item[1].get("snr", float("inf")))
    return {
        "metrics": [metric.value for metric in compared.error_metrics],
        "output": {name: rounded(values) for name, values in compared.output_tensors.items()},
        "lowest_snr": [
            {"tensor": name, **rounded(values)} for name, values in ranked[:WORST_TENSORS]
        ],
        "tensors_compared": len(inner) + len(compared.output_tensors),
    }
