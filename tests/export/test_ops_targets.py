import pytest

from edgesmith.core.errors import CheckFailed
from edgesmith.export.ops import tflite_op_report
from edgesmith.export.targets import TFLM_ALIGNMENT, arena_estimate, check_int8_only, check_tflm


def _bytes(result):
    return result.artifact.model_path.read_bytes()


def test_int8_file_has_only_integer_tensors_and_passes_both_targets(exported_all):
    report = tflite_op_report(_bytes(exported_all["tflite-int8"]))
    assert report["float_ops"] == []
    assert set(report["tensor_dtypes"]) <= {"int8", "int32", "uint8"}
    assert report["operators"]["CONV_2D"] == 9  # resnet8: stem, 2 per block x 3, 2 shortcuts
    assert check_int8_only(report, "x")["verdict"] == "pass"
    tflm = check_tflm(report, 1000, "x")
    assert tflm["flash_bytes"] == 1000
    # the largest activation of resnet8 on 8x8x1: 8*8*16 int8 = 1 KB; two live at once at least
    assert 2 * 1024 <= tflm["arena_bytes_estimate"] <= 16 * 1024


def test_float_file_fails_int8_only_naming_the_op(exported_all):
    report = tflite_op_report(_bytes(exported_all["tflite-fp32"]))
    with pytest.raises(CheckFailed, match=r"int8-only: \d+ op\(s\) use float tensors: #0 CONV_2D"):
        check_int8_only(report, "tflite-fp32")


def test_tflm_refuses_float16_and_hybrid_files(exported_all):
    with pytest.raises(CheckFailed, match="float16 tensors"):
        check_tflm(tflite_op_report(_bytes(exported_all["tflite-fp16"])), 1, "fp16")
    with pytest.raises(CheckFailed, match=r"hybrid int8-weight/float ops: #\d+ CONV_2D"):
        check_tflm(tflite_op_report(_bytes(exported_all["tflite-dynamic"])), 1, "dyn")


def test_onnx_qdq_report_counts_wrapped_ops_as_integer(exported_all):
    ops = exported_all["onnx-from-tflite"].artifact.manifest.ops
    assert ops.format == "onnx" and ops.opset == 17
    assert ops.operators["QuantizeLinear"] > 0 and ops.operators["Conv"] == 9
    float_ops = exported_all["onnx"].artifact.manifest.ops
    assert float_ops.num_float_ops == sum(float_ops.operators.values())
    assert ops.num_float_ops < float_ops.num_float_ops


def _chain_report(sizes):
    """A chain t0 -> op0 -> t1 -> op1 -> t2 ... of int8 tensors with the given byte sizes."""
    tensors = [
        {"name": f"t{i}", "dtype": "int8", "shape": [size], "constant": False}
        for i, size in enumerate(sizes)
    ]
    execution = [{"op": "RELU", "inputs": [i], "outputs": [i + 1]} for i in range(len(sizes) - 1)]
    return {
        "_tensors": tensors,
        "_execution": execution,
        "io": {"inputs": [{"name": "t0"}], "outputs": [{"name": f"t{len(sizes) - 1}"}]},
    }


def test_arena_estimate_packs_a_chain_into_the_largest_adjacent_pair():
    # t0 (100) and t1 (200) live together during op0; t1 and t2 (50) during op1; t0 and t2 never
    aligned = lambda n: -(-n // TFLM_ALIGNMENT) * TFLM_ALIGNMENT  # noqa: E731
    assert arena_estimate(_chain_report([100, 200, 50])) == aligned(200) + aligned(100)
    assert arena_estimate(_chain_report([64, 64, 64, 64])) == 128
    # a constant weight takes no arena
    report = _chain_report([64, 64])
    report["_tensors"].append({"name": "w", "dtype": "int8", "shape": [4096], "constant": True})
    report["_execution"][0]["inputs"].append(2)
    assert arena_estimate(report) == 128
