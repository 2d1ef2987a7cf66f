import warnings

import numpy as np
import pytest

import edgesmith.runtime as rt
from edgesmith.core.errors import EdgesmithError

N_REF = 32


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [("float.tflite", 1e-4), ("raw.onnx", 1e-4), ("artifact_tflite", 1e-4), ("int8.tflite", 0.1)],
)
def test_predict_matches_the_keras_reference(fixtures, digits, reference, name, tolerance):
    model = rt.load(fixtures / name, threads=1)
    out = model.predict(digits.x_eval[:N_REF])
    ref = reference["probabilities"]
    assert out.dtype == np.float32 and out.shape == ref.shape
    assert np.abs(out - ref).max() < tolerance
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.9
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=0.05)


def test_attributes_of_a_loaded_model(fixtures):
    model = rt.load(fixtures / "int8.tflite", threads=1)
    assert model.format == "tflite" and model.runtime == "litert"
    assert model.provider_used == "xnnpack"
    assert model.labels == [str(i) for i in range(10)]
    assert model.metadata == "embedded"
    spec = model.input_spec
    assert spec["shape"] == [8, 8, 1] and spec["dtype"] == "int8" and spec["layout"] == "NHWC"
    assert spec["quantization"]["zero_point"] == -128
    assert spec["quantization"]["scale"] == pytest.approx(1 / 255, rel=1e-3)
    assert spec["normalization"]["name"] == "unit" and spec["raw_input"] is False
    onnx = rt.load(fixtures / "raw.onnx")
    assert (onnx.format, onnx.runtime, onnx.provider_used) == ("onnx", "onnxruntime", "cpu")
    assert onnx.input_spec["raw_input"] is True
    artifact = rt.load(fixtures / "artifact_tflite")
    assert artifact.metadata == "manifest" and artifact.path.name == "model.tflite"
    assert artifact.macs == rt.load(fixtures / "float.tflite").macs > 0


def test_int8_quantisation_uses_the_tensors_scale(fixtures, digits):
    model = rt.load(fixtures / "int8.tflite", threads=1)
    x = model.prepare(digits.x_eval[:4])
    assert x.dtype == np.int8
    # unit normalisation, scale 1/255, zero point -128: a pixel p becomes p - 128
    expected = digits.x_eval[:4].astype(np.int16) - 128
    assert np.abs(x.astype(np.int16) - expected).max() <= 1
    out = model.run(x)
    assert out.dtype == np.float32
    # outputs are dequantised: multiples of the output scale 1/256
    assert np.allclose(out * 256, np.round(out * 256), atol=1e-3)


def test_onnx_int8_input_and_output_scales_come_from_the_graph(fixtures, digits):
    model = rt.load(fixtures / "int8_io.onnx", threads=1)
    assert model.input_tensor.dtype == np.int8
    assert model.input_tensor.scale == pytest.approx(1 / 255, rel=1e-4)
    assert model.input_tensor.zero_point == -128
    assert model.runner.output.scale is not None and model.output_kind == "logits"
    logits = model.predict(digits.x_eval)
    assert (logits.argmax(1) == digits.y_eval).mean() > 0.85
    (label, prob), *_ = model.classify(digits.x_eval[:1])
    probs = model.probabilities(logits[:1])
    assert prob == pytest.approx(float(probs.max()), rel=1e-5)
    assert label == model.labels[int(logits[0].argmax())]


@pytest.mark.parametrize("name", ["float.tflite", "int8.tflite", "raw.onnx"])
def test_any_batch_size_and_back(fixtures, digits, name):
    model = rt.load(fixtures / name, threads=1)
    whole = model.predict(digits.x_eval[:37], batch_size=37)
    for size in (1, 5, 16, 37):
        part = model.predict(digits.x_eval[:37], batch_size=size)
        np.testing.assert_allclose(part, whole, atol=1e-5)
    single = model.predict(digits.x_eval[3])  # one image, (H, W, C)
    np.testing.assert_allclose(single[0], whole[3], atol=1e-5)
    grey = model.predict(digits.x_eval[:5, :, :, 0])  # (N, H, W) for a one-channel model
    np.testing.assert_allclose(grey, whole[:5], atol=1e-5)


def test_threads_change_speed_not_results(fixtures, digits):
    one = rt.load(fixtures / "float.tflite", threads=1)
    two = rt.load(fixtures / "float.tflite", threads=2)
    assert one.threads == 1 and two.threads == 2
    np.testing.assert_allclose(
        one.predict(digits.x_eval[:20]), two.predict(digits.x_eval[:20]), atol=1e-5
    )
    onnx = rt.load(fixtures / "raw.onnx", threads=2)
    assert onnx.threads == 2


def test_xnnpack_off_gives_the_same_numbers(fixtures, digits):
    on = rt.load(fixtures / "int8.tflite", threads=1)
    off = rt.load(fixtures / "int8.tflite", threads=1, xnnpack=False)
    assert off.provider_used == "cpu"
    a, b = on.predict(digits.x_eval[:50]), off.predict(digits.x_eval[:50])
    # XNNPACK and the reference int8 kernels round intermediate values differently
    assert np.abs(a - b).max() <= 8 / 256
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.95


def test_foreign_file_takes_model_inputs_and_says_so(fixtures, digits, reference):
    with pytest.warns(rt.MetadataWarning, match="no edgesmith metadata"):
        model = rt.load(fixtures / "foreign.tflite", threads=1)
    assert model.metadata == "none" and model.labels == [str(i) for i in range(10)]
    prepared = digits.x_eval[:N_REF].astype(np.float32) / 255.0
    out = model.predict(prepared)
    assert np.abs(out - reference["probabilities"]).max() < 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        told = rt.load(fixtures / "foreign.tflite", normalization="unit")
    assert np.abs(told.predict(digits.x_eval[:N_REF]) - reference["probabilities"]).max() < 1e-4
    record = {"name": "unit", "scale": 1 / 255, "mean": [0.0], "std": [1.0]}
    assert rt.load(fixtures / "foreign.tflite", normalization=record).normalization.name == "unit"


def test_classify_gives_labels_and_probabilities(fixtures, digits):
    model = rt.load(fixtures / "float.tflite")
    results = model.classify(digits.x_eval[:10])
    assert len(results) == 10
    correct = sum(
        label == str(y) for (label, _), y in zip(results, digits.y_eval[:10], strict=True)
    )
    assert correct >= 8
    assert all(0.0 < p <= 1.0 for _, p in results)


def test_run_takes_prepared_inputs_only(fixtures, digits):
    model = rt.load(fixtures / "int8.tflite")
    x = model.prepare(digits.x_eval[:3])
    np.testing.assert_allclose(model.run(x), model.predict(digits.x_eval[:3]))
    with pytest.raises(EdgesmithError, match="takes int8. Received dtype float32"):
        model.run(x.astype(np.float32))


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (np.zeros((2, 16, 16, 3), np.uint8), r"does not fit the model input 8x8x1"),
        (np.zeros((2, 8, 8, 3), np.uint8), r"does not fit the model input 8x8x1"),
        (np.array([["a"] * 8] * 8), r"expected numeric pixels"),
        (np.full((1, 8, 8, 1), 300.0), r"pixel values span \[300, 300\]"),
        (np.full((1, 8, 8, 1), -1.0), r"expected raw pixels in \[0, 255\]"),
        (np.zeros((0, 8, 8, 1), np.uint8), r"holds no images"),
    ],
)
def test_bad_images_name_the_problem(fixtures, images, match):
    model = rt.load(fixtures / "float.tflite")
    with pytest.raises(EdgesmithError, match=match):
        model.predict(images)


def test_bad_paths_and_settings(fixtures, tmp_path):
    with pytest.raises(EdgesmithError, match="model not found"):
        rt.load(tmp_path / "missing.tflite")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(EdgesmithError, match=r"expected a \.tflite or \.onnx file"):
        rt.load(text)
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes((fixtures / "float.tflite").read_bytes()[:3000])
    with pytest.raises(EdgesmithError, match="cut.tflite"):
        rt.load(truncated)
    cut_onnx = tmp_path / "cut.onnx"
    cut_onnx.write_bytes((fixtures / "raw.onnx").read_bytes()[:3000])
    with pytest.raises(EdgesmithError, match="not a readable ONNX model"):
        rt.load(cut_onnx)
    disguised = tmp_path / "text.tflite"
    disguised.write_text("not a model at all")
    with pytest.raises(EdgesmithError, match="not a TFLite model"):
        rt.load(disguised)
    with pytest.raises(EdgesmithError, match="threads must be a whole number >= 1"):
        rt.load(fixtures / "float.tflite", threads=0)
    with pytest.raises(EdgesmithError, match="unknown normalization"):
        rt.load(fixtures / "float.tflite", normalization="sideways")


def test_metadata_that_does_not_fit_the_model_is_refused(fixtures, tmp_path):
    import json
    import shutil

    bad = tmp_path / "artifact"
    shutil.copytree(fixtures / "artifact_tflite", bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["input"]["shape"] = [32, 32, 3]
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgesmithError, match=r"says the input is \[32, 32, 3\]"):
        rt.load(bad)
