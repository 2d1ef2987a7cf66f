import numpy as np
import pytest

from edgesmith.compress.config import QatConfig
from edgesmith.core.errors import EdgesmithError


def _int8_tflite(model):
    from edgesmith.tfkeras.backend import tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _tflite_accuracy(data, manifest):
    from ai_edge_litert.interpreter import Interpreter

    from edgesmith.core.datasets import load_dataset

    dataset = load_dataset("digits")
    norm = manifest.input.normalization
    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    correct = 0
    for image, label in zip(dataset.x_eval, dataset.y_eval, strict=True):
        x = np.round(norm.apply(image[None]) / scale + zero).clip(-128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        correct += int(interpreter.get_tensor(out["index"]).argmax() == label)
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    return correct / len(dataset.y_eval), inp["dtype"], out["dtype"], ops


@pytest.fixture(scope="module")
def qat_artifact(digits_artifact, tmp_path_factory):
    from edgesmith.compress.quantization_aware import qat

    lines = []
    out = tmp_path_factory.mktemp("qat") / "q"
    return qat(digits_artifact, QatConfig(epochs=2), out, report=lines.append), lines


def test_qat_artifact_follows_the_export_contract(qat_artifact, digits_artifact):
    from edgesmith.core.artifacts import read_artifact
    from edgesmith.tfkeras.model_io import load_keras_model

    artifact, _ = qat_artifact
    manifest = artifact.manifest
    assert manifest.technique == "qat" and manifest.qat is True
    assert manifest.model_file == "model.h5"
    assert manifest.parent == read_artifact(digits_artifact).id
    assert manifest.quantization.float_layers == {}
    assert manifest.metrics.macs == read_artifact(digits_artifact).metrics.macs
    model, _ = load_keras_model(artifact.model_path, quantized=True)
    assert any(type(layer).__name__ == "QuantizeWrapperV2" for layer in model.layers)


def test_qat_graph_converts_to_full_int8(qat_artifact):
    from edgesmith.tfkeras.model_io import load_keras_model

    artifact, _ = qat_artifact
    model, _ = load_keras_model(artifact.model_path, quantized=True)
    accuracy, in_dtype, out_dtype, ops = _tflite_accuracy(_int8_tflite(model), artifact.manifest)
    assert in_dtype == np.int8 and out_dtype == np.int8
    # BatchNorm folded into the int8 convs: no float islands between them
    assert "DEQUANTIZE" not in ops and ops.count("CONV_2D") == 9
    assert accuracy == pytest.approx(artifact.metrics.accuracy, abs=0.03)


@pytest.mark.slow
def test_rescaling_layer_stays_float_and_is_named(tmp_path, quiet):
    from edgesmith.compress.quantization_aware import qat
    from edgesmith.tfkeras.backend import keras
    from edgesmith.train import import_model

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(2.0, name="rescale")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(x)
    keras.Model(inputs, outputs).save(tmp_path / "m.keras")
    source = import_model(tmp_path / "m.keras", "digits", tmp_path / "src", report=quiet)
    lines = []
    artifact = qat(source.path, QatConfig(epochs=1), tmp_path / "q", report=lines.append)
    floats = artifact.manifest.quantization.float_layers
    assert list(floats) == ["rescale"] and "Rescaling" in floats["rescale"]
    assert any("layer 'rescale' stays float" in line for line in lines)


def test_nested_model_is_refused_by_layer_name():
    from edgesmith.compress.quantization_aware import annotate
    from edgesmith.tfkeras.backend import keras

    inner = keras.Sequential([keras.layers.Dense(4)], name="inner")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    with pytest.raises(EdgesmithError, match="layer 'inner' \\(Sequential\\) is a model inside"):
        annotate(model)


def test_pruning_preserving_qat_keeps_the_zeros(pruned_artifact, tmp_path, quiet):
    from edgesmith.compress.quantization_aware import qat

    source, _ = pruned_artifact
    kept = qat(
        source.path, QatConfig(epochs=1, preserve_sparsity=True), tmp_path / "k", report=quiet
    )
    metrics = kept.metrics
    assert metrics.sparsity == pytest.approx(source.metrics.sparsity, abs=1e-3)
    assert all(abs(d) < 1e-3 for d in metrics.sparsity_drift_per_layer.values())
    lost = qat(source.path, QatConfig(epochs=1), tmp_path / "l", report=quiet)
    assert lost.metrics.sparsity < metrics.sparsity - 0.02  # it drifts


def test_qat_of_a_qat_artifact_is_refused(qat_artifact, tmp_path, quiet):
    from edgesmith.compress.quantization_aware import qat

    artifact, _ = qat_artifact
    with pytest.raises(EdgesmithError, match="is a QAT artifact"):
        qat(artifact.path, QatConfig(), tmp_path / "x", report=quiet)
