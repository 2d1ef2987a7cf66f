"""Float ONNX -> int8 QDQ ONNX with onnxruntime's static quantiser.

Settings measured on x86: QDQ format, **unsigned (QUInt8) activations** and signed
per-channel (QInt8) weights. With signed activations only 3 of ResNet-8's 9 convolutions fused
into QLinearConv and the file ran 2.3x slower.

Weights are quantised with ``reduce_range=True`` (7-bit weights, ``|w| <= 64``) by default.
On x86 CPUs with AVX2 or AVX-512 but without VNNI, onnxruntime's U8S8 kernels multiply with
``VPMADDUBSW``, which adds two u8*s8 products into a saturating int16: with full 8-bit weights
the sums overflow and accuracy drops on the machine that runs the file (a CIFAR-10 ResNet-8 lost
2.6 points on an AVX2 machine that it kept on an AVX-512-VNNI Xeon, and up to 9 points when
lightly trained). onnxruntime's quantisation guide names two remedies, ``reduce_range`` or U8U8;
7-bit weights cannot saturate the int16 sum (255 * 64 * 2 = 32,640) and keep the fast U8S8
kernels (U8U8 ran 2x slower), so they are the safe default for a file whose CPU is not known.
``reduce_range=False`` (full 8-bit weights) is for a file that only ever runs on VNNI (or ARM
dot-product) CPUs.

``quant_pre_process`` runs first (shape inference and graph optimisation, as onnxruntime
recommends) with ``skip_symbolic_shape``, which spares a sympy dependency; static image shapes
need no symbolic inference.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.export.quiet import quiet_conversion


def quantize_static_qdq(
    float_model, calibration: np.ndarray, *, batch_size: int = 32, reduce_range: bool = True
):
    """Quantise an in-memory float ``onnx.ModelProto``, calibrating on model inputs.

    Args:
        float_model: the float ONNX model (one NHWC float32 input).
        calibration: float32 model inputs (N, H, W, C), already preprocessed for the model.
        batch_size: images per calibration batch (only speed depends on it).
        reduce_range: 7-bit weights, safe from U8S8 saturation on x86 without VNNI (see the
            module docstring); False for full 8-bit weights on VNNI/ARM-only targets.

    Returns:
        The quantised ``onnx.ModelProto``.

    Raises:
        EdgesmithError: without calibration data, or when onnxruntime cannot quantise.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration is None or len(calibration) == 0:
        raise EdgesmithError("onnx-int8 needs calibration data (representative images); none given")
    input_name = float_model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(
                [
                    {input_name: calibration[i : i + batch_size].astype(np.float32)}
                    for i in range(0, len(calibration), batch_size)
                ]
            )

        def get_next(self):
            return next(self._batches, None)

    with tempfile.TemporaryDirectory(prefix="edgesmith-") as tmp:
        source = Path(tmp) / "float.onnx"
        prepared = Path(tmp) / "prepared.onnx"
        target = Path(tmp) / "int8.onnx"
        onnx.save(float_model, source)
        try:
            with quiet_conversion():
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
                quantize_static(
                    str(prepared),
                    str(target),
                    Reader(),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    reduce_range=reduce_range,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                )
        except Exception as exc:  # onnxruntime raises many types while quantising
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EdgesmithError(f"onnxruntime could not quantise the model: {text}") from None
        return onnx.load(str(target))
