import json

import numpy as np
import pytest

from edgesmith.core.artifacts import read_artifact
from edgesmith.core.progress import silent
from edgesmith.export.formats import FORMATS
from edgesmith.runtime.embedded_metadata import read_file_metadata

QUIET = {"report": silent}
CONTRACT_METRICS = {
    "accuracy",
    "source_accuracy_eval",
    "num_eval",
    "agreement",
    "max_abs_diff",
    "mean_abs_diff",
    "parity",
    "tolerance",
    "size_bytes",
    "gzip_bytes",
    "macs",
    "params",
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_exports_and_passes_parity(exported_all, digits_artifact, name):
    result = exported_all[name]
    assert result.failure is None and result.artifact is not None
    artifact = read_artifact(result.artifact.path)  # hashes verified
    source = read_artifact(digits_artifact)
    manifest = artifact.manifest
    fmt = FORMATS[name]
    assert artifact.path.name == name
    assert (manifest.stage, manifest.technique, manifest.format) == (
        "export",
        name,
        fmt.file_format,
    )
    assert manifest.parent == source.id
    assert artifact.model_path.name == f"model.{fmt.file_format}"
    assert list(manifest.labels) == source.labels
    assert manifest.dataset == source.manifest.dataset
    assert manifest.output == source.manifest.output
    metrics = manifest.metrics
    assert CONTRACT_METRICS <= set(metrics.to_dict())
    assert metrics.parity == "pass"
    assert metrics.num_eval == source.manifest.dataset.num_eval
    assert metrics.agreement >= fmt.tolerance.min_agreement
    assert metrics.macs == source.metrics.macs
    if fmt.tolerance.max_abs_diff is None:
        # quantised: judged on accuracy, not on a chance agreement rate; the verdict is the
        # accuracy test's (drop beyond 1 point shown at p < 0.05), recorded with its numbers
        test = metrics.accuracy_test
        assert test["verdict"] == "pass" and test["p_value"] >= 0.05
        assert test["n"] == metrics.num_eval and test["max_drop_points"] == 1.0
    else:
        # float formats compute what the source computes: at most one image in 359 may flip
        assert abs(metrics.accuracy - source.metrics.accuracy) <= 2 / 359
    size = artifact.model_path.stat().st_size
    assert metrics.size_bytes == size and 0 < metrics.gzip_bytes < size
    assert manifest.ops.operators


@pytest.mark.parametrize("name", list(FORMATS))
def test_input_record_matches_the_file_and_is_embedded(
    exported_all, digits_artifact, tmp_path, name
):
    import shutil

    from edgesmith import runtime

    artifact = exported_all[name].artifact
    record = artifact.input_spec.to_dict()
    source_input = read_artifact(digits_artifact).input_spec.to_dict()
    assert set(record) == {
        "shape",
        "layout",
        "dtype",
        "normalization",
        "raw_input",
        "quantization",
    }
    assert record["shape"] == [8, 8, 1] and record["layout"] == "NHWC"
    assert record["normalization"] == source_input["normalization"]
    assert record["raw_input"] is False
    alone = tmp_path / artifact.model_path.name  # the file without its manifest
    shutil.copy(artifact.model_path, alone)
    model = runtime.load(alone)
    assert model.metadata == "embedded"
    assert record["dtype"] == str(model.input_tensor.dtype)
    assert record["quantization"] == model.input_spec["quantization"]
    embedded = read_file_metadata(alone)
    assert embedded["input"] == record
    assert embedded["labels"] == artifact.labels
    assert embedded["output"] == artifact.output_spec.to_dict()
    assert embedded["macs"] == artifact.metrics.macs


def test_file_dtypes_per_format(exported_all):
    dtypes = {name: r.artifact.input_spec.dtype for name, r in exported_all.items()}
    assert dtypes == {
        "tflite-fp32": "float32",
        "tflite-fp16": "float32",
        "tflite-dynamic": "float32",
        "tflite-int8": "int8",
        "tflite-int16x8": "int16",
        "onnx": "float32",
        "onnx-int8": "float32",
        "onnx-from-tflite": "float32",
    }
    quant = exported_all["tflite-int8"].artifact.input_spec.quantization
    assert quant.scale > 0 and -128 <= quant.zero_point <= 127
    assert exported_all["tflite-int16x8"].artifact.input_spec.quantization.zero_point == 0


def test_sizes_rank_as_expected(exported_all):
    size = {name: r.metrics.size_bytes for name, r in exported_all.items()}
    # resnet8 on digits: 78k params -> ~318 KB float, ~1/2 fp16, ~1/3.3 int8
    assert 300_000 < size["tflite-fp32"] < 340_000
    assert 0.45 < size["tflite-fp16"] / size["tflite-fp32"] < 0.6
    assert size["tflite-int8"] < 0.35 * size["tflite-fp32"]
    assert size["tflite-dynamic"] < 0.35 * size["tflite-fp32"]
    assert size["onnx-int8"] < 0.4 * size["onnx"]


def test_exported_file_reproduces_the_recorded_accuracy(exported_all, digits_artifact):
    from edgesmith import runtime
    from edgesmith.core.datasets import load_dataset

    data = load_dataset("digits")
    for name in ("tflite-int8", "onnx-int8"):
        artifact = exported_all[name].artifact
        with runtime.load(artifact.path) as model:
            accuracy = float(np.mean(model.predict(data.x_eval).argmax(1) == data.y_eval))
        assert accuracy == pytest.approx(artifact.metrics.accuracy, abs=1e-6)


def test_float_formats_match_keras_to_rounding(exported_all):
    for name in ("tflite-fp32", "onnx"):
        assert exported_all[name].metrics.max_abs_diff < 1e-5
        assert exported_all[name].metrics.agreement == 1.0
    assert exported_all["tflite-fp16"].metrics.max_abs_diff < 1e-2


def test_manifest_records_resolved_config(exported_all):
    config = exported_all["onnx"].artifact.manifest.config
    assert config["opset"] == 17 and config["format"] == "onnx" and config["data"] == "digits"
    assert config["calibration_samples"] == 500 and config["raw_input"] is False
    json.dumps(exported_all["onnx"].artifact.manifest.to_dict())  # JSON-clean


def test_onnx_int8_weights_are_7_bit_against_u8s8_saturation(exported_all):
    """reduce_range: |weights| <= 64, so AVX2 CPUs without VNNI cannot saturate (onnx_quant)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(exported_all["onnx-int8"].artifact.model_path))
    weights = [
        numpy_helper.to_array(init)
        for init in model.graph.initializer
        if init.data_type == onnx.TensorProto.INT8 and len(init.dims) > 1
    ]
    # 255 * 64 * 2 = 32,640: a pair of u8 x s8 products fits VPMADDUBSW's int16
    assert weights and all(int(np.abs(w.astype(np.int16)).max()) <= 64 for w in weights)
    assert max(int(np.abs(w).max()) for w in weights) >= 60  # the 7-bit range is used
