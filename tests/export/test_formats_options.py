import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.export.formats import FLOAT, FLOAT16, FORMATS, QUANTIZED, parse_formats
from edgesmith.export.options import TF2ONNX_MAX_OPSET, ExportOptions, check_opset, max_opset


def test_issue_formats_are_all_registered():
    assert list(FORMATS) == [
        "tflite-fp32",
        "tflite-fp16",
        "tflite-dynamic",
        "tflite-int8",
        "tflite-int16x8",
        "onnx",
        "onnx-int8",
        "onnx-from-tflite",
    ]
    assert {f.file_format for f in FORMATS.values()} == {"tflite", "onnx"}


def test_parse_formats_keeps_order_drops_duplicates_and_expands_all():
    assert [f.name for f in parse_formats("onnx, tflite-int8,onnx")] == ["onnx", "tflite-int8"]
    assert [f.name for f in parse_formats("all")] == list(FORMATS)
    assert [f.name for f in parse_formats(["tflite-fp16"])] == ["tflite-fp16"]


@pytest.mark.parametrize("text", ["tflite-int9", "onnx,tflite", ""])
def test_unknown_or_empty_format_lists_the_valid_ones(text):
    with pytest.raises(EdgesmithError) as info:
        parse_formats(text)
    message = str(info.value)
    assert all(name in message for name in FORMATS)
    assert "\n" not in message


def test_tolerances_match_the_issue():
    # float: >= 99.9% agreement, <= 1e-4 on logits; int8: judged on accuracy (export/parity.py),
    # agreement only as a floor for catastrophic breakage
    assert FLOAT.min_agreement == 0.999 and FLOAT.bound("logits") == 1e-4
    assert FLOAT.bound("probabilities") == 1e-4
    assert QUANTIZED.min_agreement == 0.5 and QUANTIZED.bound("logits") is None
    assert FLOAT16.bound("logits") > FLOAT16.bound("probabilities") > FLOAT.bound("logits")
    assert FORMATS["tflite-int8"].tolerance is QUANTIZED
    assert FORMATS["onnx"].tolerance is FLOAT
    record = FLOAT16.to_dict("logits")
    assert record == {"min_agreement": 0.995, "max_abs_diff": 5e-2, "compared": "logits"}


def test_options_round_trip_and_reject_unknown_keys():
    options = ExportOptions(raw_input=True, io_dtype="uint8", target="tflm")
    assert ExportOptions.from_dict(options.to_dict()) == options
    with pytest.raises(EdgesmithError, match="unknown ExportOptions key.*raw_inputs"):
        ExportOptions.from_dict({"raw_inputs": True})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"io_dtype": "int4"}, "io_dtype must be one of int8, uint8. Received: 'int4'"),
        ({"calibration_samples": 0}, "calibration_samples must be a whole number >= 1"),
        ({"target": "edgetpu"}, "target must be one of int8-only, tflm"),
        ({"opset": 99}, "--opset 99 cannot be written"),
        ({"opset": 11}, "expected 13.."),
    ],
)
def test_bad_options_name_the_value(values, message):
    with pytest.raises(EdgesmithError) as info:
        ExportOptions(**values)
    assert message in str(info.value)


def test_opset_limit_follows_the_installed_onnx_and_tf2onnx():
    import onnx.defs

    assert max_opset() == min(onnx.defs.onnx_opset_version(), TF2ONNX_MAX_OPSET)
    check_opset(max_opset())
    with pytest.raises(EdgesmithError):
        check_opset(max_opset() + 1)


def test_tf2onnx_max_opset_constant_matches_installed_tf2onnx():
    from tf2onnx import constants

    from edgesmith.tfkeras.backend import tf  # noqa: F401  (tf2onnx imports TensorFlow)

    assert max(constants.OPSET_TO_IR_VERSION) == TF2ONNX_MAX_OPSET
