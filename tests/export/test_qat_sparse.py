import numpy as np

from edgesmith.core.progress import silent

QUIET = {"report": silent}


def _artifact_from(model, source_dir, out, technique, filename="model.keras", **sections):
    from edgesmith.core.artifacts import ArtifactWriter, read_artifact
    from edgesmith.core.manifest import Metrics

    source = read_artifact(source_dir).manifest
    with ArtifactWriter(out) as writer:
        model.save(writer.dir / filename)
        return writer.commit(
            model_files=[filename],
            stage="compress",
            technique=technique,
            fmt="keras",
            config={},
            input_spec=source.input,
            labels=source.labels,
            dataset=source.dataset,
            metrics=Metrics(accuracy=0.0, num_eval=0),
            parent=source.id,
            output=source.output,
            **sections,
        ).path


def test_qat_model_converts_to_int8_directly(digits_artifact, tmp_path):
    import tensorflow_model_optimization as tfmot

    from edgesmith.core.datasets import load_dataset
    from edgesmith.core.normalization import parse_normalization
    from edgesmith.export import export
    from edgesmith.tfkeras.backend import keras
    from edgesmith.train.zoo import build_model

    data = load_dataset("digits")
    norm = parse_normalization("unit")
    keras.utils.set_random_seed(0)
    model = tfmot.quantization.keras.quantize_model(build_model("seed_cnn", (8, 8, 1), 10))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(norm.apply(data.x_train), data.y_train, epochs=1, batch_size=32, verbose=0)
    source = _artifact_from(model, digits_artifact, tmp_path / "qat", "qat", "model.h5", qat=True)
    artifacts = export(
        source, "tflite-int8,onnx-from-tflite", tmp_path / "out", calibration_samples=100, **QUIET
    )
    for artifact in artifacts:
        metrics = artifact.metrics
        assert metrics.parity == "pass" and metrics.agreement >= 0.98
        assert metrics.accuracy > 0.5
    assert artifacts[0].input_spec.dtype == "int8"


def test_qat_model_refuses_float_formats(digits_artifact, tmp_path, capsys):
    import json
    import shutil

    from edgesmith.app.cli import main

    copy = tmp_path / "fake_qat"
    shutil.copytree(digits_artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["technique"] = "qat"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    code = main(["export", "--from", str(copy), "--format", "onnx", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "is a QAT model: it exports to tflite-int8, onnx-from-tflite" in capsys.readouterr().err


def test_sparse_encoding_of_a_pruned_model(digits_artifact, exported_all, tmp_path):
    from edgesmith.core.artifacts import read_artifact
    from edgesmith.export import export
    from edgesmith.tfkeras.model_io import load_keras_model

    model, _ = load_keras_model(read_artifact(digits_artifact).model_path)
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            weights = layer.get_weights()
            kernel = weights[0]
            weights[0] = np.where(np.abs(kernel) >= np.quantile(np.abs(kernel), 0.8), kernel, 0)
            layer.set_weights(weights)
    pruned = _artifact_from(model, digits_artifact, tmp_path / "pruned", "prune")
    int8, fp32 = export(
        pruned, "tflite-int8,tflite-fp32", tmp_path / "sparse", sparse=True, max_eval=100, **QUIET
    )
    assert int8.manifest.sparse.encoded_tensors > 0
    assert int8.manifest.sparse.xnnpack is False  # sparse int8 fails under XNNPACK: builtins
    assert fp32.manifest.sparse.xnnpack is True
    assert int8.metrics.parity == "pass"
    assert fp32.metrics.parity == "pass"
    dense = exported_all["tflite-int8"].metrics.size_bytes  # same architecture, dense
    assert int8.metrics.size_bytes < 0.8 * dense
    assert "DENSIFY" in int8.manifest.ops.operators
