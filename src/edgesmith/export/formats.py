"""The export formats: one registry entry per format name, with its parity tolerance.

Importing this module loads no TensorFlow, so the CLI can list and check format names in
milliseconds; the functions that build each format live in ``export/builders.py``.
"""

from __future__ import annotations

import dataclasses

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.profiles import FIRMWARE_TARGETS


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """What an exported file must achieve against its Keras source on the eval split.

    Attributes:
        min_agreement: least fraction of images whose top-1 class equals the source's.
        max_abs_diff: largest allowed absolute difference of any output value (logits or
            probabilities, as the model outputs them, dequantised), or None where the format
            quantises on purpose and only agreement is a fair test.
        max_abs_diff_logits: the bound used instead of ``max_abs_diff`` when the model outputs
            logits (which are not bounded by 1 as probabilities are).
    """

    min_agreement: float
    max_abs_diff: float | None = None
    max_abs_diff_logits: float | None = None

    def bound(self, output_kind: str) -> float | None:
        """The max-abs-diff bound for a model whose outputs are ``logits`` or ``probabilities``."""
        if output_kind == "logits" and self.max_abs_diff_logits is not None:
            return self.max_abs_diff_logits
        return self.max_abs_diff

    def to_dict(self, output_kind: str) -> dict:
        """The manifest's ``tolerance`` record: what was compared and against what."""
        return {
            "min_agreement": self.min_agreement,
            "max_abs_diff": self.bound(output_kind),
            "compared": output_kind,
        }


# Float exports must reproduce the source to rounding error: 1e-4 on logits (the bound).
# Softmax never amplifies a difference (its Jacobian's norm is at most 1/2), so 1e-4 on the
# probabilities a zoo model outputs is at least as strict as 1e-4 on its logits.
FLOAT = Tolerance(min_agreement=0.999, max_abs_diff=1e-4, max_abs_diff_logits=1e-4)
# float16 weights carry 11 significant bits (relative error ~5e-4 each): agreement stays near
# perfect but outputs move by ~1e-3 of their magnitude; logits reach ~10-20 on a trained model.
FLOAT16 = Tolerance(min_agreement=0.995, max_abs_diff=1e-2, max_abs_diff_logits=5e-2)
# Integer formats quantise on purpose: the test is accuracy against the source's, within
# --max-accuracy-drop points (export/parity.py); agreement is recorded, with a floor only for
# catastrophic breakage (a good int8 ResNet-8 agrees with its float source on ~97.5%).
QUANTIZED = Tolerance(min_agreement=0.5)


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """One export format.

    Attributes:
        name: the ``--format`` value and the sub-directory name.
        file_format: ``tflite`` or ``onnx`` (the manifest's ``format``).
        description: one line for ``--help``.
        tolerance: the parity bounds the file must meet.
        integer: whether activations are integer (needs calibration data unless the source
            was trained with QAT).
        io_dtype_choice: whether ``--io-dtype`` picks its input/output dtype.
        sparse_ok: whether ``--sparse`` (TFLite sparse weight encoding) applies.
        quantizer: ``litert`` for the formats the LiteRT Quantizer (ai-edge-quantizer) makes
            from the float32 .tflite; None for the converter's own.
    """

    name: str
    file_format: str
    description: str
    tolerance: Tolerance
    integer: bool = False
    io_dtype_choice: bool = False
    sparse_ok: bool = False
    quantizer: str | None = None

    @property
    def model_file(self) -> str:
        """The model file's name inside the artifact directory."""
        return f"model.{self.file_format}"


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("tflite-fp32", "tflite", "float32 TFLite", FLOAT, sparse_ok=True),
        ExportFormat("tflite-fp16", "tflite", "float16 weights, float32 compute", FLOAT16),
        ExportFormat(
            "tflite-dynamic",
            "tflite",
            "int8 weights, float activations (dynamic range)",
            QUANTIZED,
        ),
        ExportFormat(
            "tflite-int8",
            "tflite",
            "full integer int8, per-channel (int8 or uint8 I/O)",
            QUANTIZED,
            integer=True,
            io_dtype_choice=True,
            sparse_ok=True,
        ),
        ExportFormat(
            "tflite-int16x8",
            "tflite",
            "int16 activations, int8 weights (int16 I/O)",
            QUANTIZED,
            integer=True,
        ),
        ExportFormat("onnx", "onnx", "float32 ONNX via tf2onnx", FLOAT),
        ExportFormat(
            "onnx-int8",
            "onnx",
            "onnxruntime static QDQ: u8 activations, s8 per-channel weights",
            QUANTIZED,
            integer=True,
        ),
        ExportFormat(
            "onnx-from-tflite",
            "onnx",
            "tf2onnx on a full-int8 .tflite (float I/O, QDQ inside)",
            QUANTIZED,
            integer=True,
        ),
    )
}
# The LiteRT Quantizer's formats: a recipe applied to the float32 .tflite (export/litert_*.py).
# They are named one by one ("all" keeps meaning the converter's formats above): each needs the
# ai-edge-quantizer package, and tflite-recipe a recipe file. Parity is judged as for the
# converter's integer formats (accuracy within --max-accuracy-drop, agreement >= 50%).
LITERT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "tflite-w8a8",
            "tflite",
            "LiteRT Quantizer static: int8 per-channel weights, int8 activations (int8 I/O)",
            QUANTIZED,
            integer=True,
            quantizer="litert",
        ),
        ExportFormat(
            "tflite-w8a16",
            "tflite",
            "LiteRT Quantizer static: int8 per-channel weights, int16 activations (int16 I/O)",
            QUANTIZED,
            integer=True,
            quantizer="litert",
        ),
        ExportFormat(
            "tflite-w8-dynamic",
            "tflite",
            "LiteRT Quantizer dynamic range: int8 per-channel weights, float activations",
            QUANTIZED,
            quantizer="litert",
        ),
        ExportFormat(
            "tflite-w4-weight-only",
            "tflite",
            "LiteRT Quantizer: int4 per-channel weights (CONV_2D, FULLY_CONNECTED) dequantised "
            "to float compute",
            QUANTIZED,
            quantizer="litert",
        ),
        ExportFormat(
            "tflite-w4-block32",
            "tflite",
            "LiteRT Quantizer dynamic: int4 weights in blocks of 32 (FULLY_CONNECTED only; "
            "convs stay float)",
            QUANTIZED,
            quantizer="litert",
        ),
        ExportFormat(
            "tflite-recipe",
            "tflite",
            "LiteRT Quantizer recipe from --quantizer-recipe (e.g. the mixed W8A8/W8A16 one "
            "compress sensitivity writes)",
            QUANTIZED,
            integer=True,
            quantizer="litert",
        ),
    )
}
ALL_FORMATS: dict[str, ExportFormat] = {**FORMATS, **LITERT_FORMATS}
# A QAT model's fake-quant ranges are only honoured by the integer TFLite conversion.
QAT_FORMATS = ("tflite-int8", "onnx-from-tflite")
IO_DTYPES = ("int8", "uint8")
TARGETS = (
    "int8-only",
    "tflm",
    "ethos-u55-128",
    "ethos-u55-256",
    "ethos-u65-256",
    "ethos-u85-256",
    *FIRMWARE_TARGETS,
)


def parse_formats(text: str | list[str] | tuple[str, ...]) -> list[ExportFormat]:
    """Turn ``tflite-int8,onnx`` (or a list of names) into format entries, in the given order.

    ``all`` is every converter format (:data:`FORMATS`); the LiteRT Quantizer's
    (:data:`LITERT_FORMATS`) are named one by one.

    Raises:
        EdgesmithError: for an empty list or an unknown name, listing the valid ones.
    """
    names = text.split(",") if isinstance(text, str) else list(text)
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise EdgesmithError(f"--format needs at least one of: {', '.join(ALL_FORMATS)}")
    chosen: list[ExportFormat] = []
    for name in names:
        if name == "all":
            chosen.extend(f for f in FORMATS.values() if f not in chosen)
            continue
        if name not in ALL_FORMATS:
            raise EdgesmithError(
                f"unknown export format {name!r}: expected one of {', '.join(ALL_FORMATS)} "
                "(or all: the converter's formats)"
            )
        if ALL_FORMATS[name] not in chosen:
            chosen.append(ALL_FORMATS[name])
    return chosen


def format_lines() -> str:
    """``export --help``'s list of formats, a line each.

    The converter's formats come first, then ``all`` (which means them), then the LiteRT
    Quantizer's, which ``all`` leaves out (they need ai-edge-quantizer).
    """
    line = "  {0.name:<21} {0.description}".format
    quantizer = [line(f) for name, f in ALL_FORMATS.items() if name not in FORMATS]
    every = "  all                   every format above"
    return "\n".join([*map(line, FORMATS.values()), every, *quantizer])
