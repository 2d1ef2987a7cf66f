"""One builder per export format: the prepared Keras model in, the model file's content out.

A :class:`Plan` carries what every builder shares (the model to convert, calibration inputs,
options) and a cache, so ``onnx-int8`` reuses the float ONNX graph instead of converting twice.
TFLite builders return bytes; ONNX builders return an ``onnx.ModelProto`` (metadata is
embedded and the file written by the exporter).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.export import onnx as onnx_export
from edgesmith.export import onnx_quant, tflite
from edgesmith.export.calibration import raw_input_quantization
from edgesmith.export.formats import LITERT_FORMATS
from edgesmith.export.options import ExportOptions
from edgesmith.tfkeras.backend import keras


@dataclasses.dataclass
class Plan:
    """What the builders of one export run share.

    Attributes:
        model: the tf_keras model to convert (raw-pixel wrapped when ``options.raw_input``).
        calibration: float32 inputs of ``model`` for calibration (may be empty for float-only
            runs and QAT sources).
        options: the export options.
        qat: the source was trained quantisation-aware.
        keras3: the source file, when Keras 3 saved it and the converter's TFLite formats are
            made by Keras 3's own export (``ExportOptions.keras3_export``).
        read_as: how ``model`` was read: ``tf_keras``, or ``keras3-rebuilt`` (a Keras 3 file
            rebuilt in tf_keras).
        cache: intermediate results shared between builders.
    """

    model: keras.Model
    calibration: np.ndarray
    options: ExportOptions
    qat: bool = False
    keras3: tflite.Keras3File | None = None
    read_as: str = "tf_keras"
    cache: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def tflite_model(self) -> keras.Model | tflite.Keras3File:
        """What the converter's TFLite formats convert: the Keras 3 file, else the model."""
        return self.model if self.keras3 is None else self.keras3

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` once per key."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def _tflite(variant: str) -> Callable[[Plan], bytes]:
    def build(plan: Plan) -> bytes:
        sparse = plan.options.sparse
        model = plan.tflite_model
        return tflite.convert(model, variant, calibration=plan.calibration, sparse=sparse)

    return build


def build_tflite_int8(plan: Plan) -> bytes:
    """Full-integer int8 (per-channel weights), int8 or uint8 I/O; QAT ranges when present.

    A QAT model still gets the representative data: the converter insists on it for integer
    I/O, and uses it only for tensors without learned (fake-quant) ranges.
    """
    io_dtype = plan.options.io_dtype

    def make() -> bytes:
        data = tflite.convert(
            plan.tflite_model,
            "int8",
            calibration=plan.calibration,
            io_dtype=io_dtype,
            sparse=plan.options.sparse,
            qat=plan.qat,
        )
        if plan.options.raw_input:
            _check_raw_quantization(data, io_dtype)
        return data

    return plan.cached(f"tflite-int8:{io_dtype}", make)


def _check_raw_quantization(data: bytes, io_dtype: str) -> None:
    dtype, quant = tflite.input_quantization(data)
    want = raw_input_quantization(io_dtype)
    ok = (
        dtype == io_dtype
        and quant is not None
        and abs(quant["scale"] - want["scale"]) < 1e-6
        and quant["zero_point"] == want["zero_point"]
    )
    if not ok:
        raise EdgesmithError(
            f"--raw-input: the converter gave the {dtype} input scale/zero point {quant}; "
            f"raw pixels need {want}"
        )


def build_onnx(plan: Plan):
    """Float ONNX from the Keras model (tf2onnx, explicit input signature)."""
    return plan.cached("onnx", lambda: onnx_export.from_keras(plan.model, plan.options.opset))


def build_onnx_int8(plan: Plan):
    """Static QDQ quantisation (onnxruntime) of the float ONNX graph."""
    import onnx

    float_model = onnx.ModelProto()
    float_model.CopyFrom(build_onnx(plan))
    return onnx_quant.quantize_static_qdq(float_model, plan.calibration)


def build_onnx_from_tflite(plan: Plan):
    """tf2onnx on a full-int8 .tflite with float32 I/O, so the ONNX file takes float inputs.

    Integer I/O would leave the ONNX output's scale and zero point outside the graph (ONNX
    tensors carry none), where a runtime could not find them; with float I/O the graph starts
    with QuantizeLinear and ends with DequantizeLinear and every op inside stays int8.
    """

    def make() -> bytes:
        return tflite.convert(
            plan.model,
            "int8",
            calibration=plan.calibration,
            io_dtype="float32",
            qat=plan.qat,
        )

    data = plan.cached("tflite-int8:float32", make)
    return onnx_export.from_tflite(data, plan.options.opset)


BUILDERS: dict[str, Callable[[Plan], Any]] = {
    "tflite-fp32": _tflite("fp32"),
    "tflite-fp16": _tflite("fp16"),
    "tflite-dynamic": _tflite("dynamic"),
    "tflite-int8": build_tflite_int8,
    "tflite-int16x8": _tflite("int16x8"),
    "onnx": build_onnx,
    "onnx-int8": build_onnx_int8,
    "onnx-from-tflite": build_onnx_from_tflite,
}
KERAS3_EXPORTED = frozenset(name for name in BUILDERS if name.startswith("tflite-"))
"""The converter's TFLite formats: the ones Keras 3's own export makes from a Keras 3 file."""


def _litert(name: str) -> Callable[[Plan], bytes]:
    def build(plan: Plan) -> bytes:
        from edgesmith.export import litert_export

        return litert_export.build(plan, name)

    return build


# The LiteRT Quantizer's formats: a recipe applied to the run's float32 .tflite.
BUILDERS.update({name: _litert(name) for name in LITERT_FORMATS})
