"""Keras model -> .tflite bytes with the TFLite converter, one function per variant.

Variants: ``fp32``; ``fp16`` (float16 weights); ``dynamic`` (int8 weights, float activations);
``int8`` (full integer, per-channel weights, int8 or uint8 input/output, calibrated on
representative data, or on the ranges a QAT model learned); ``int16x8`` (int16 activations,
int8 weights, int16 input/output). ``sparse`` adds the sparse weight encoding for pruned models.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def converter_settings(
    variant: str,
    *,
    calibration: np.ndarray | None = None,
    io_dtype: str = "int8",
    sparse: bool = False,
    qat: bool = False,
) -> dict[str, Any]:
    """The TFLite converter's attributes for a variant, by name.

    One definition serves both routes to a .tflite file: tf_keras's ``from_keras_model`` and
    Keras 3's own ``model.export(format="litert", **settings)``, which sets the same
    attributes on its converter; so the two routes cannot quantise differently. The ops are
    always named: Keras 3's export would otherwise allow TensorFlow ops (SELECT_TF_OPS) that
    the runtimes edgesmith targets do not have.

    Raises:
        EdgesmithError: for an unknown variant, or an integer variant without calibration data.
    """
    if variant not in VARIANTS:
        raise EdgesmithError(f"TFLite variant must be one of {VARIANTS}. Received: {variant!r}")
    integer = variant in ("int8", "int16x8")
    if integer and not qat and (calibration is None or len(calibration) == 0):
        raise EdgesmithError(
            f"tflite-{variant} needs calibration data (representative images); none was given"
        )
    # Optimize.DEFAULT quantises weights, so float32 takes only the sparsity flag (if any).
    optimizations = [] if variant == "fp32" else [tf.lite.Optimize.DEFAULT]
    if sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    settings: dict[str, Any] = {"optimizations": optimizations}
    spec: dict[str, Any] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
    if variant == "fp16":
        spec["supported_types"] = [tf.float16]
    elif variant == "int8":
        spec["supported_ops"] = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        settings.update(inference_input_type=IO_TYPES[io_dtype])
        settings.update(inference_output_type=IO_TYPES[io_dtype])
    elif variant == "int16x8":
        spec["supported_ops"] = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        settings.update(inference_input_type=tf.int16, inference_output_type=tf.int16)
    if integer and calibration is not None and len(calibration):
        settings["representative_dataset"] = _representative(calibration)
    settings["target_spec"] = spec
    return settings


@dataclasses.dataclass(frozen=True)
class Keras3File:
    """A model file Keras 3 saved, to convert with Keras 3's own export (no tf_keras rebuild).

    Keras 3 reads the file as written and converts through its export archive (a SavedModel)
    on the TensorFlow backend, with the same converter attributes as the tf_keras route
    (:func:`converter_settings`); use it only where :func:`keras3_export_backend` says Keras 3
    runs on TensorFlow in this process.

    Attributes:
        path: the ``.keras`` file.
        trusted: load it with Keras 3's safe mode off (``--trust-model``).
    """

    path: Path
    trusted: bool = False

    @functools.cached_property
    def model(self) -> Any:
        """The Keras 3 model, loaded once for every format converted from it."""
        import keras as keras3

        try:
            return keras3.saving.load_model(self.path, compile=False, safe_mode=not self.trusted)
        except Exception as exc:  # Keras 3 raises many types for unreadable files
            raise EdgesmithError(
                f"cannot load {self.path} with Keras 3 ({type(exc).__name__}: {exc})"
            ) from None

    def export(self, settings: dict[str, Any]) -> bytes:
        """``model.export(format="litert", **settings)``, the file's bytes."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="edgesmith-keras3-") as folder:
            out = Path(folder) / "model.tflite"
            self.model.export(str(out), format="litert", verbose=False, **settings)
            return out.read_bytes()


def convert(
    model: keras.Model | Keras3File,
    variant: str,
    *,
    calibration: np.ndarray | None = None,
    io_dtype: str = "int8",
    sparse: bool = False,
    qat: bool = False,
) -> bytes:
    """Convert a tf_keras model, or a Keras 3 file with Keras 3's export, to a .tflite file.

    Args:
        model: the tf_keras model to convert (already wrapped for raw input, if wanted), or a
            :class:`Keras3File`.
        variant: one of :data:`VARIANTS`.
        calibration: float32 model inputs (N, H, W, C) for the integer variants.
        io_dtype: ``int8``, ``uint8`` or ``float32`` input/output for ``int8`` (float32
            keeps QUANTIZE/DEQUANTIZE ops at the edges; used on the way to ONNX).
        sparse: also encode sparse weights (``EXPERIMENTAL_SPARSITY``).
        qat: the model carries its own quantisation ranges (tfmot QAT): no calibration needed.

    Returns:
        The .tflite file's bytes.

    Raises:
        EdgesmithError: for an unknown variant, missing calibration data, a Keras 3 file that
            does not load, or a model the converter rejects (its first line is given).
    """
    settings = converter_settings(
        variant, calibration=calibration, io_dtype=io_dtype, sparse=sparse, qat=qat
    )
    if isinstance(model, Keras3File):
        return _converted(lambda: model.export(settings), variant)
    converter = _configured(tf.lite.TFLiteConverter.from_keras_model(model), settings)
    return _converted(lambda: bytes(converter.convert()), variant)


def _configured(converter, settings: dict[str, Any]):
    """Set :func:`converter_settings`' attributes as Keras 3's export sets them."""
    for name, value in settings.items():
        if name == "target_spec":
            for key, item in value.items():
                setattr(converter.target_spec, key, item)
        else:
            setattr(converter, name, value)
    return converter


def keras3_export_backend() -> str | None:
    """The backend Keras 3 runs on in this process, as the user set it up, or ``None``.

    ``None`` when the keras package is not installed. Keras 3's LiteRT export converts on the
    TensorFlow backend (Keras 3's own default); a process, ``KERAS_BACKEND`` or ``keras.json``
    on JAX or PyTorch keeps the tf_keras route, rather than being switched behind the user's back.
    """
    try:
        import keras as keras3
    except ImportError:
        return None
    return keras3.backend.backend()


def _converted(convert_now: Callable[[], bytes], variant: str) -> bytes:
    """Run a conversion quietly; the converter's many exception types become one line."""
    try:
        with quiet_conversion():
            return convert_now()
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
    settings = converter_settings("int8", calibration=calibration, io_dtype=io_dtype)
    converter = _configured(tf.lite.TFLiteConverter.from_keras_model(model), settings)
    if float_fallback:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    return converter


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
