"""Real TensorFlow models: one whose RNN cell wrapper runs code is refused; the zoo's load freely.

The hostile model is the reported one: an RNN whose cell is tf_keras' ``ResidualWrapper`` with a
``residual_fn`` lambda that writes a marker file whenever it runs (tf_keras' ``.h5`` loader
rebuilds and calls it whatever ``safe_mode`` says). Nothing may create the marker without
``--trust-model``.
"""

from __future__ import annotations

import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.tfkeras.model_safety import check_model_file

pytest.importorskip("tensorflow")

PATH = r"model > layers\[2\] > cell > residual_fn: holds a Python lambda"


def hostile_rnn(marker):
    """An RNN model whose ResidualWrapper's residual_fn writes ``marker`` whenever it runs."""
    from tf_keras.src.layers.rnn.cell_wrappers import ResidualWrapper

    from edgesmith.tfkeras.backend import keras

    evil = eval(f"lambda i, o: (open({str(marker)!r}, 'w').write('ran'), o)[1]")  # noqa: S307
    inputs = keras.Input((8, 8, 1))  # digits' 8x8 images, read as 8 steps of 8 features
    x = keras.layers.Reshape((8, 8))(inputs)
    x = keras.layers.RNN(ResidualWrapper(keras.layers.SimpleRNNCell(8), residual_fn=evil))(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    assert marker.exists()  # building the model called the lambda: the payload is live
    marker.unlink()
    return model


@pytest.fixture
def hostile_files(tmp_path):
    """The hostile model as .h5, as that HDF5 renamed .keras, and as tf_keras' own .keras zip."""
    marker = tmp_path / "MARKER"
    model = hostile_rnn(marker)
    model.save(tmp_path / "evil.h5")
    (tmp_path / "renamed.keras").write_bytes((tmp_path / "evil.h5").read_bytes())
    model.save(tmp_path / "native.keras")
    assert not marker.exists()  # saving runs nothing
    return marker, {name: tmp_path / name for name in ("evil.h5", "renamed.keras", "native.keras")}


def test_a_residual_fn_runs_nothing_without_trust_model(hostile_files, tmp_path, capsys):
    from edgesmith.app.cli import main
    from edgesmith.tfkeras.model_io import load_keras_model

    marker, files = hostile_files
    for name, path in files.items():
        with pytest.raises(EdgesmithError, match=PATH + ".*--trust-model"):
            check_model_file(path)
        with pytest.raises(EdgesmithError, match=PATH):
            load_keras_model(path)  # the API refuses too, not only the CLI
        out = tmp_path / f"out-{name}"
        assert main(["import", "--model", str(path), "--data", "digits", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "model > layers[2] > cell > residual_fn" in err and "--trust-model" in err, err
        assert "Traceback" not in err
        assert not out.exists() and not marker.exists(), name

    # the payload is real: trusted, tf_keras' .h5 loader runs it (as the user chose)
    model, how = load_keras_model(files["evil.h5"], trust_model=True)
    assert how == "tf_keras" and marker.exists()


def test_an_artifact_holding_it_runs_nothing_on_export(
    hostile_files, tmp_path, capsys, keras_artifact
):
    """The artifact's model is checked at every later load too (export reran the payload)."""
    from edgesmith.app.cli import main

    marker, files = hostile_files
    # trusted_model_code False: what the buggy import recorded
    keras_artifact(tmp_path / "art", files["evil.h5"].read_bytes(), trusted_model_code=False)
    out = tmp_path / "exported"
    argv = ["export", "--from", tmp_path / "art", "--format", "tflite-fp32", "--out", out]
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "cell > residual_fn" in err and "--trust-model" in err, err
    assert not out.exists() and not marker.exists()


def _zoo_files(tmp_path):
    """Every zoo model, built by tf_keras and by Keras 3, saved as .h5 and as .keras."""
    import keras as keras3

    from edgesmith.train.zoo import ZOO

    for name, build in ZOO.items():
        for flavour, module in (("tf_keras", None), ("keras3", keras3)):
            model = build((8, 8, 1), 10, keras=module)
            for suffix in (".h5", ".keras"):
                path = tmp_path / f"{flavour}-{name}{suffix}"
                model.save(path)
                yield flavour, path


@pytest.mark.slow
def test_the_zoo_models_load_without_trust_model(tmp_path):
    from edgesmith.tfkeras.model_io import load_keras_model
    from edgesmith.tfkeras.tfmot import tfmot
    from edgesmith.train.zoo import resnet8

    for flavour, path in _zoo_files(tmp_path):
        assert check_model_file(path).reasons == (), path
        if flavour == "tf_keras":
            model, how = load_keras_model(path)  # the loader's own list of layers agrees
            assert how == "tf_keras" and model.layers
    # a QAT artifact's model holds tfmot's wrappers, quantizers and configs
    qat = tfmot.quantization.keras.quantize_model(resnet8((8, 8, 1), 10))
    for suffix in (".h5", ".keras"):
        qat.save(tmp_path / f"qat{suffix}")
        assert check_model_file(tmp_path / f"qat{suffix}").reasons == ()
    model, _ = load_keras_model(tmp_path / "qat.h5", quantized=True)
    assert model.layers


def test_a_zoo_model_needs_no_trust_model(tmp_path):
    """The quick tier's check: one zoo model, as tf_keras saves it both ways."""
    from edgesmith.train.zoo import resnet8

    model = resnet8((8, 8, 1), 10)
    for suffix in (".h5", ".keras"):
        model.save(tmp_path / f"m{suffix}")
        assert check_model_file(tmp_path / f"m{suffix}").reasons == ()
