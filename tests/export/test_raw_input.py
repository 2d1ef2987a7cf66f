import numpy as np
import pytest

from edgesmith.core.artifacts import read_artifact
from edgesmith.core.progress import silent

QUIET = {"report": silent}


@pytest.fixture(scope="module")
def raw_int8(digits_artifact, tmp_path_factory):
    from edgesmith.export import export

    out = tmp_path_factory.mktemp("raw") / "int8"
    return {
        a.technique: a
        for a in export(
            digits_artifact, "tflite-int8,tflite-fp32,onnx", out, raw_input=True, **QUIET
        )
    }


def test_raw_int8_takes_pixel_minus_128_like_mlperf(raw_int8, exported_all):
    from edgesmith import runtime
    from edgesmith.core.datasets import load_dataset

    artifact = raw_int8["tflite-int8"]
    record = artifact.input_spec
    assert record.raw_input is True and record.dtype == "int8"
    assert record.quantization.to_dict() == {"scale": 1.0, "zero_point": -128}
    assert artifact.manifest.raw_input_fold == "kernel:stem_conv"  # unit: exact, no extra op
    assert "MUL" not in artifact.manifest.ops.operators
    assert artifact.metrics.parity == "pass"
    # A device feeds pixel - 128 straight into the tensor: no float anywhere.
    data = load_dataset("digits")
    with runtime.load(artifact.model_path) as model:
        direct = model.run((data.x_eval.astype(np.int16) - 128).astype(np.int8))
        assert np.array_equal(direct, model.predict(data.x_eval))
    accuracy = float(np.mean(direct.argmax(1) == data.y_eval))
    normalised = exported_all["tflite-int8"].metrics.accuracy
    assert accuracy == pytest.approx(normalised, abs=0.02)


def test_raw_float_formats_take_float_pixels(raw_int8):
    from edgesmith import runtime
    from edgesmith.core.datasets import load_dataset

    data = load_dataset("digits")
    for name in ("tflite-fp32", "onnx"):
        artifact = raw_int8[name]
        assert artifact.input_spec.raw_input is True
        assert artifact.metrics.max_abs_diff < 1e-4
        with runtime.load(artifact.model_path) as model:
            out = model.run(data.x_eval[:16].astype(np.float32))  # pixels 0..255 as they are
        assert read_artifact(artifact.path).metrics.parity == "pass"
        assert out.shape == (16, 10)


def test_raw_uint8_input_has_zero_point_0(digits_artifact, tmp_path):
    from edgesmith.export import export

    (artifact,) = export(
        digits_artifact,
        "tflite-int8",
        tmp_path / "u8",
        raw_input=True,
        io_dtype="uint8",
        max_eval=120,
        **QUIET,
    )
    record = artifact.input_spec
    assert record.dtype == "uint8"
    assert record.quantization.to_dict() == {"scale": 1.0, "zero_point": 0}
    assert artifact.metrics.parity == "pass"
    assert artifact.metrics.num_eval == 120


def test_non_zero_mean_folds_as_an_affine_layer_and_logits_hold_1e4(logits_artifact, tmp_path):
    from edgesmith.export import export

    artifacts = export(
        logits_artifact, "tflite-fp32,onnx,tflite-int8", tmp_path / "x", raw_input=True, **QUIET
    )
    by_name = {a.technique: a for a in artifacts}
    for name in ("tflite-fp32", "onnx"):
        metrics = by_name[name].metrics
        assert metrics.tolerance == {
            "min_agreement": 0.999,
            "max_abs_diff": 1e-4,
            "compared": "logits",
        }
        assert metrics.max_abs_diff <= 1e-4 and metrics.parity == "pass"
        assert by_name[name].manifest.raw_input_fold == "affine"
    assert by_name["tflite-int8"].input_spec.quantization.to_dict() == {
        "scale": 1.0,
        "zero_point": -128,
    }
    assert by_name["tflite-int8"].metrics.agreement >= 0.98


def test_folding_reproduces_the_source_model():
    from edgesmith.core.normalization import Normalization
    from edgesmith.export.raw_input import with_raw_input
    from edgesmith.tfkeras.backend import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    pixels = np.random.default_rng(0).integers(0, 256, (5, 6, 6, 3)).astype(np.float32)
    for norm, how in (
        (Normalization("unit", 1 / 255, (0.0,), (1.0,)), "kernel:"),
        (Normalization("custom", 1 / 255, (0.0,), (0.2, 0.3, 0.5)), "kernel:"),
        (Normalization("standard", 1 / 255, (0.5, 0.4, 0.3), (0.2, 0.3, 0.5)), "affine"),
    ):
        folded, done = with_raw_input(model, norm)
        assert done.startswith(how)
        expected = model(norm.apply(pixels)).numpy()
        np.testing.assert_allclose(folded(pixels).numpy(), expected, atol=1e-4)
