"""Keras model -> .tflite bytes with the TFLite converter, one function per variant.

Variants: ``fp32``; ``fp16`` (float16 weights); ``dynamic`` (int8 weights, float activations);
``int8`` (full integer, per-channel weights, int8 or uint8 input/output, calibrated on
representative data, or on the ranges a QAT model learned); ``int16x8`` (int16 activations,
int8 weights, int16 input/output). ``sparse`` adds the sparse weight encoding for pruned models.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.export.quiet import quiet_conversion
from edgesmith.tfkeras.backend import keras, tf

VARIANTS = ("fp32", "fp16", "dynamic", "int8", "int16x8")
IO_TYPES = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}


def _representative(inputs: np.ndarray):
    def generate() -> Iterator[list[np.ndarray]]:
        for index in range(len(inputs)):
            yield [inputs[index : index + 1].astype(np.float32)]

    return generate


def convert(
    model: keras.Model,
    variant: str,
    *,
    calibration: np.ndarray | None = None,
    io_dtype: str = "int8",
    sparse: bool = False,
    qat: bool = False,
) -> bytes:
    """Convert a tf_keras model to a .tflite flatbuffer.

    Args:
        model: the model to convert (already wrapped for raw input, if wanted).
        variant: one of :data:`VARIANTS`.
        calibration: float32 model inputs (N, H, W, C) for the integer variants.
        io_dtype: ``int8``, ``uint8`` or ``float32`` input/output for ``int8`` (float32
            keeps QUANTIZE/DEQUANTIZE ops at the edges; used on the way to ONNX).
        sparse: also encode sparse weights (``EXPERIMENTAL_SPARSITY``).
        qat: the model carries its own quantisation ranges (tfmot QAT): no calibration needed.

    Returns:
        The .tflite file's bytes.

    Raises:
        EdgesmithError: for an unknown variant, missing calibration data, or a model the
            converter rejects (its first line is given).
    """
    if variant not in VARIANTS:
        raise EdgesmithError(f"TFLite variant must be one of {VARIANTS}. Received: {variant!r}")
    integer = variant in ("int8", "int16x8")
    if integer and not qat and (calibration is None or len(calibration) == 0):
        raise EdgesmithError(
            f"tflite-{variant} needs calibration data (representative images); none was given"
        )
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    # Optimize.DEFAULT quantises weights, so float32 takes only the sparsity flag (if any).
    optimizations = [] if variant == "fp32" else [tf.lite.Optimize.DEFAULT]
    if sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    converter.optimizations = optimizations
    if variant == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        _set_int8(converter, calibration, io_dtype)
    elif variant == "int16x8":
        converter.representative_dataset = _representative(calibration)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        converter.inference_input_type = tf.int16
        converter.inference_output_type = tf.int16
    try:
        with quiet_conversion():
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgesmithError(
            f"the TFLite converter rejected the model ({variant}): {first}"
        ) from None


def int8_converter(
    model: keras.Model,
    calibration: np.ndarray,
    *,
    io_dtype: str = "float32",
    float_fallback: bool = False,
):
    """The TFLite converter that export's ``tflite-int8`` uses, before ``convert()``.

    The sensitivity analysis and the int8 accuracy budget drive TensorFlow's quantisation
    debugger with it, so they score the int8 model export ships, not a look-alike.

    Args:
        model: the float model.
        calibration: float32 model inputs from :func:`~edgesmith.export.calibration.
            calibration_pixels` (export's own pick).
        io_dtype: input/output type; float32 keeps the quantise/dequantise at the edges.
        float_fallback: allow float builtin ops beside the int8 ones (for variants that
            leave chosen ops float); export's full-integer file has none.
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    _set_int8(converter, calibration, io_dtype)
    if float_fallback:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    return converter


def _set_int8(converter, calibration: np.ndarray | None, io_dtype: str) -> None:
    if calibration is not None and len(calibration):
        converter.representative_dataset = _representative(calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = IO_TYPES[io_dtype]
    converter.inference_output_type = IO_TYPES[io_dtype]


def input_quantization(model_bytes: bytes) -> tuple[str, dict | None]:
    """The input tensor's dtype name and quantisation ``{"scale", "zero_point"}`` (or None)."""
    return _io_quantization(model_bytes, "input")


def output_quantization(model_bytes: bytes) -> tuple[str, dict | None]:
    """The output tensor's dtype name and quantisation ``{"scale", "zero_point"}`` (or None)."""
    return _io_quantization(model_bytes, "output")


def _io_quantization(model_bytes: bytes, which: str) -> tuple[str, dict | None]:
    from edgesmith.export.ops import tflite_io_tensors

    tensor = tflite_io_tensors(model_bytes)[which][0]
    return tensor["dtype"], tensor["quantization"]


convert_tflite = convert  # the name ``edgesmith.export`` gives it beside the other formats
