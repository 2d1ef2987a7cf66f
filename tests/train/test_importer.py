import numpy as np
import pytest

from edgesmith.core.artifacts import read_artifact
from edgesmith.core.datasets import load_dataset
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import silent
from edgesmith.tfkeras.model_io import load_keras_model
from edgesmith.train import import_model

QUIET = {"report": silent}


def tf_keras_model():
    from edgesmith.tfkeras.backend import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


@pytest.mark.parametrize("name", ["m.h5", "m.keras", "saved"])
def test_imports_tf_keras_files_unchanged(tmp_path, name):
    model = tf_keras_model()
    path = tmp_path / name
    model.save(path) if name != "saved" else model.save(path, save_format="tf")
    # a SavedModel's traced functions are code: it needs trust_model (--trust-model)
    trust = name == "saved"
    artifact = import_model(path, "digits", tmp_path / "out", trust_model=trust, **QUIET)
    m = read_artifact(artifact.path).manifest
    assert m.trusted_model_code is trust
    assert m.technique == "import" and m.config["loaded_as"] == "tf_keras"
    assert m.output.kind == "probabilities" and m.metrics.num_eval == 359
    assert 0.0 <= m.metrics.accuracy <= 1.0
    if name.endswith((".h5", ".keras")):
        assert artifact.model_path.read_bytes() == path.read_bytes()


def keras3_model():
    import keras as keras3

    keras3.utils.set_random_seed(0)
    inputs = keras3.Input((8, 8, 1))
    x = keras3.layers.Rescaling(2.0)(inputs)
    x = keras3.layers.Conv2D(6, 3, padding="same")(x)
    x = keras3.layers.BatchNormalization()(x)
    y = keras3.layers.ReLU()(x)
    x = keras3.layers.Add()([x, keras3.layers.DepthwiseConv2D(3, padding="same")(y)])
    x = keras3.layers.GlobalAveragePooling2D()(x)
    return keras3.Model(inputs, keras3.layers.Dense(10)(keras3.layers.Dropout(0.1)(x)))


def test_keras3_file_is_rebuilt_in_tf_keras_with_identical_outputs(tmp_path):
    source = keras3_model()
    source.save(tmp_path / "k3.keras")
    rebuilt, how = load_keras_model(tmp_path / "k3.keras")
    assert how == "keras3-rebuilt"
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(
        rebuilt(x, training=False).numpy(), np.asarray(source(x, training=False)), atol=1e-5
    )
    artifact = import_model(tmp_path / "k3.keras", "digits", tmp_path / "out", **QUIET)
    assert artifact.manifest.output.kind == "logits"
    assert artifact.manifest.model_file == "model.keras"


def test_keras3_sequential(tmp_path):
    import keras as keras3

    model = keras3.Sequential(
        [
            keras3.Input((8, 8, 1)),
            keras3.layers.Flatten(),
            keras3.layers.Dense(10, activation="softmax"),
        ]
    )
    model.save(tmp_path / "seq.keras")
    rebuilt, _ = load_keras_model(tmp_path / "seq.keras")
    x = np.ones((2, 8, 8, 1), np.float32)
    np.testing.assert_allclose(rebuilt(x).numpy(), np.asarray(model(x)), atol=1e-6)


def test_import_checks_shapes_and_classes(tmp_path):
    tf_keras_model().save(tmp_path / "m.keras")
    with pytest.raises(EdgesmithError, match="outputs \\(10,\\) but the data has 4 classes"):
        import_model(tmp_path / "m.keras", "synthetic?shape=8x8", tmp_path / "o1", **QUIET)
    with pytest.raises(EdgesmithError, match="takes inputs shaped"):
        import_model(tmp_path / "m.keras", "synthetic?classes=10", tmp_path / "o2", **QUIET)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("absent.keras", None, "model file not found"),
        ("model.onnx", b"x", "unsupported model file"),
        ("broken.h5", b"not hdf5", "neither an HDF5 .* nor a .keras zip"),
        ("broken.keras", b"not a zip", "neither an HDF5"),
    ],
)
def test_unreadable_model_files(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(EdgesmithError, match=message):
        load_keras_model(tmp_path / name)


def test_directory_that_is_not_a_saved_model(tmp_path):
    with pytest.raises(EdgesmithError, match="not a SavedModel"):
        load_keras_model(tmp_path)


def test_recorded_accuracy_matches_a_direct_evaluation(tmp_path):
    model = tf_keras_model()
    model.save(tmp_path / "m.keras")
    artifact = import_model(
        tmp_path / "m.keras", "digits", tmp_path / "out", normalization="raw", **QUIET
    )
    data = load_dataset("digits")
    direct = model.predict(data.x_eval.astype(np.float32), verbose=0).argmax(1) == data.y_eval
    assert artifact.metrics.accuracy == pytest.approx(direct.mean(), abs=1e-6)
    assert artifact.input_spec.normalization.name == "raw"


def hostile_model(marker):
    """A tf_keras model whose Lambda's bytecode writes ``marker`` whenever the layer is called."""
    from edgesmith.tfkeras.backend import keras

    evil = eval(f"lambda x: (open({str(marker)!r}, 'w').write('ran'), x)[1]")  # noqa: S307
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Lambda(evil, name="evil")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    marker.unlink()  # building the model called the Lambda once
    return model


@pytest.mark.parametrize("name", ["hostile.h5", "renamed.keras"])
def test_a_lambda_model_runs_nothing_without_trust_model(tmp_path, capsys, name):
    """Issue 14 item 1: tf_keras ran a .h5 (or HDF5 renamed .keras) Lambda's bytecode on load."""
    from edgesmith.app.cli import main

    marker = tmp_path / "MARKER"
    path = tmp_path / name
    hostile_model(marker).save(tmp_path / "hostile.h5")
    if name != "hostile.h5":
        (tmp_path / "hostile.h5").rename(path)
    with pytest.raises(EdgesmithError, match="layer 'evil' is a Lambda.*--trust-model"):
        load_keras_model(path)  # the API refuses too, not only the CLI
    argv = ["import", "--model", str(path), "--data", "digits", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Lambda" in err and "--trust-model" in err
    assert not marker.exists() and not (tmp_path / "out").exists()

    assert main([*argv, "--trust-model", "--quiet"]) == 0
    assert marker.exists()  # trusted: its code ran, as the user chose
    manifest = read_artifact(tmp_path / "out").manifest
    assert manifest.trusted_model_code is True
    marker.unlink()
    # the artifact carries the same code: using it again needs the flag again
    from edgesmith.compress.source import read_keras_source

    with pytest.raises(EdgesmithError, match="--trust-model"):
        read_keras_source(tmp_path / "out")
    assert not marker.exists()


def test_artifacts_edgesmith_wrote_from_zoo_models_need_no_trust(digits_artifact):
    from edgesmith.compress.source import read_keras_source
    from edgesmith.export import read_source

    manifest = read_artifact(digits_artifact).manifest
    assert manifest.trusted_model_code is False
    read_keras_source(digits_artifact)
    read_source(digits_artifact)
    model, how = load_keras_model(read_artifact(digits_artifact).model_path)
    assert how == "tf_keras" and model.layers
