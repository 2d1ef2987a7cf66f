"""Model files are inspected before deserialisation; code-bearing ones need --trust-model.

These tests craft the files with h5py and zipfile (no TensorFlow): the config is what matters.
The end-to-end test with a real Lambda whose bytecode writes a marker is in
tests/train/test_importer.py.
"""

import json
import zipfile

import h5py
import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.tfkeras.model_safety import (
    check_model_file,
    inspect_model_file,
    model_code_trusted,
    trusting_model_code,
)


def layer(class_name, name, **config):
    return {"class_name": class_name, "config": {"name": name, **config}}


def functional(*layers):
    return {"class_name": "Functional", "config": {"name": "m", "layers": list(layers)}}


SAFE = functional(
    layer("InputLayer", "in", batch_input_shape=[None, 8, 8, 1]),
    layer("Conv2D", "conv", filters=4, kernel_initializer={"class_name": "GlorotUniform"}),
    layer("Dense", "logits", units=10, activation="softmax"),
)
LAMBDA = functional(
    layer("InputLayer", "in"),
    layer("Lambda", "evil", function=["4wEAAAAAAAAA", None, None], function_type="lambda"),
)


def write_h5(path, config, version="2.21.0"):
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = json.dumps(config)
        handle.attrs["keras_version"] = version
    return path


def write_zip(path, config, version="2.21.0"):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": version}))
    return path


def test_a_plain_model_needs_no_trust(tmp_path):
    report = check_model_file(write_h5(tmp_path / "m.h5", SAFE))
    assert report.kind == "hdf5" and report.reasons == ()
    assert report.layer_classes == ("InputLayer", "Conv2D", "Dense")
    assert check_model_file(write_zip(tmp_path / "m.keras", SAFE)).kind == "keras-zip"


@pytest.mark.parametrize("name", ["m.h5", "renamed.keras", "m.hdf5"])
def test_a_lambda_is_refused_whatever_the_suffix_and_accepted_when_trusted(tmp_path, name):
    path = write_h5(tmp_path / name, LAMBDA)
    with pytest.raises(EdgesmithError, match="layer 'evil' is a Lambda.*--trust-model"):
        check_model_file(path)
    assert inspect_model_file(path).kind == "hdf5"  # by content, not by the .keras suffix
    assert check_model_file(path, trust_model=True).reasons
    with trusting_model_code():
        assert check_model_file(path).reasons
    assert not model_code_trusted()  # the scope ends with the block


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"module": "os", "class_name": "system", "config": {"name": "x"}},
            "names the Python module 'os'",
        ),
        (
            functional({"module": "builtins", "class_name": "function", "config": "exec"}),
            "module 'builtins'",
        ),
        (
            functional(
                {
                    "module": "keras.layers",
                    "class_name": "Dense",
                    "config": {"name": "d"},
                    "registered_name": "pkg>Evil",
                }
            ),
            "custom object 'pkg>Evil'",
        ),
        (
            functional(layer("TFOpLambda", "w", function="io.write_file")),
            "TensorFlow function 'io.write_file'",
        ),
        (
            functional(layer("TimeDistributed", "t", layer=layer("Lambda", "inner"))),
            "'inner' is a Lambda",
        ),
    ],
)
def test_configs_that_import_or_run_code_are_refused(tmp_path, config, message):
    path = write_zip(tmp_path / "m.keras", config, version="3.10.0")
    with pytest.raises(EdgesmithError, match=message):
        check_model_file(path)


def test_keras_ops_and_keras_modules_are_fine(tmp_path):
    config = functional(
        {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d"}},
        layer("TFOpLambda", "add", function="math.add"),
    )
    assert check_model_file(write_zip(tmp_path / "m.keras", config)).reasons == ()


def test_unknown_layer_classes_are_refused_and_the_loader_can_refuse_more(tmp_path):
    path = write_h5(tmp_path / "m.h5", functional(layer("InputLayer", "in"), layer("MyBlock", "b")))
    with pytest.raises(EdgesmithError, match=r"model > layers\[1\]: MyBlock 'b' is not one of"):
        check_model_file(path)  # not on the allowlist: custom code
    # on the allowlist (a Keras 3 layer) but not in this loader: the loader's list refuses it
    path = write_h5(
        tmp_path / "k.h5", functional(layer("InputLayer", "in"), layer("RMSNormalization", "r"))
    )
    assert check_model_file(path).reasons == ()
    with pytest.raises(EdgesmithError, match="layer class 'RMSNormalization'"):
        check_model_file(path, known_layer=lambda name: name == "InputLayer")


def test_a_saved_model_directory_is_code(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(EdgesmithError, match="SavedModel directory.*--trust-model"):
        check_model_file(tmp_path)
    assert check_model_file(tmp_path, trust_model=True).kind == "savedmodel"


def test_files_that_are_not_model_files(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"not a model at all")
    with pytest.raises(EdgesmithError, match="neither an HDF5"):
        check_model_file(tmp_path / "x.h5")
    with pytest.raises(EdgesmithError, match="not found"):
        check_model_file(tmp_path / "absent.keras")
    polyglot = write_h5(tmp_path / "p.h5", SAFE)
    with zipfile.ZipFile(polyglot, "a") as archive:  # a zip appended to an HDF5 file
        archive.writestr("config.json", json.dumps(LAMBDA))
    with pytest.raises(EdgesmithError, match="both an HDF5 and a zip"):
        check_model_file(polyglot)
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("config.json", "{not json")
    with pytest.raises(EdgesmithError, match="not valid JSON"):
        check_model_file(bad)


def test_import_refuses_a_lambda_h5_before_tensorflow_with_exit_2(tmp_path, capsys):
    from edgesmith.app.cli import main

    path = write_h5(tmp_path / "net.h5", LAMBDA)
    code = main(["import", "--model", str(path), "--data", "digits", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "Lambda" in err and "--trust-model" in err
    assert not (tmp_path / "o").exists()


@pytest.fixture
def hostile_artifact(tmp_path, keras_artifact):
    model = tmp_path / "lambda.h5"
    write_h5(model, LAMBDA)
    # trusted_model_code True: a manifest never grants trust by itself
    return keras_artifact(tmp_path / "art", model.read_bytes(), trusted_model_code=True)


@pytest.mark.parametrize(
    "argv",
    [
        ["compress", "prune", "--sparsity", "0.5", "--from", "{art}", "--out", "{out}"],
        ["compress", "qat", "--from", "{art}", "--out", "{out}"],
        ["compress", "distill", "--teacher", "{art}", "--student", "resnet8", "--out", "{out}"],
        ["compress", "sensitivity", "--from", "{art}", "--out", "{out}.json"],
        ["export", "--from", "{art}", "--format", "tflite-fp32", "--out", "{out}"],
    ],
)
def test_every_command_reading_an_artifact_refuses_its_code(
    hostile_artifact, tmp_path, capsys, argv
):
    from edgesmith.app.cli import main

    out = str(tmp_path / "out")
    code = main([a.format(art=hostile_artifact, out=out) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "Lambda" in err and "--trust-model" in err, err
    assert not (tmp_path / "out").exists()


def test_the_trust_flag_and_scope_reach_the_checks(hostile_artifact):
    from edgesmith.app.cli import build_parser
    from edgesmith.compress.source import read_keras_source
    from edgesmith.export import read_source

    with pytest.raises(EdgesmithError, match="--trust-model"):
        read_keras_source(hostile_artifact)
    with trusting_model_code():
        assert read_keras_source(hostile_artifact).path == hostile_artifact
        assert read_source(hostile_artifact).artifact.path == hostile_artifact
    assert read_keras_source(hostile_artifact, trust_model=True)
    for argv in (
        ["build", "--device", "cpu-x86", "--data", "digits", "--out", "o", "--trust-model"],
        ["export", "--from", "a", "--format", "onnx", "--out", "o", "--trust-model"],
        ["train", "--model", "m.h5", "--out", "o", "--trust-model"],
        ["import", "--model", "m.h5", "--data", "digits", "--out", "o", "--trust-model"],
        ["compress", "recipe", "--from", "a", "--recipe", "r.yaml", "--out", "o", "--trust-model"],
    ):
        assert build_parser().parse_args(argv).trust_model is True


# -- the allowlist: everything in the config, at any depth ---------------------------------------

BYTECODE = "4wIAAAAAAAAAAAAAAAQAAAADAAAA81gAAACXAHQBAAAAAAAAAAAAAGQBZAKmAgAAqwIAAAAAAAAA\n"
"""The start of what tf_keras' ``func_dump`` writes for a two-argument lambda (base64 marshal)."""


def keras_obj(class_name, config, module="keras.layers", registered=None):
    return {
        "module": module,
        "class_name": class_name,
        "config": config,
        "registered_name": registered,
    }


def rnn_with(cell):
    return functional(
        layer("InputLayer", "in"), layer("Dense", "d"), layer("RNN", "rnn", cell=cell)
    )


def residual(**fields):
    cell = keras_obj("SimpleRNNCell", {"name": "c", "units": 8, "activation": "tanh"})
    return keras_obj(
        "ResidualWrapper",
        {"name": "w", "cell": cell, **fields},
        module="tf_keras.src.layers.rnn.cell_wrappers",
        registered="ResidualWrapper",
    )


@pytest.mark.parametrize("name", ["m.h5", "renamed.keras"])
def test_a_cell_wrappers_residual_fn_is_refused_naming_its_path(tmp_path, name):
    """The bug: a ResidualWrapper keeps a marshalled lambda under ``cell``, not ``layers``."""
    evil = residual(residual_fn=[BYTECODE, None, None], residual_fn_type="lambda")
    path = write_h5(tmp_path / name, rnn_with(evil))
    message = r"model > layers\[2\] > cell > residual_fn: holds a Python lambda .*--trust-model"
    with pytest.raises(EdgesmithError, match=message):
        check_model_file(path)
    report = check_model_file(path, trust_model=True)
    assert len(report.reasons) == 1  # its *_type and *_module siblings say the same thing
    # without a residual_fn, the wrapper is a built-in like any other
    assert check_model_file(write_h5(tmp_path / "ok.h5", rnn_with(residual()))).reasons == ()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"residual_fn": "system", "residual_fn_type": "function", "residual_fn_module": "os"},
            r"residual_fn: names the Python function 'system' from the module 'os'",
        ),
        ({"residual_fn_type": "lambda"}, "residual_fn_type: says 'lambda'"),
        ({"dropout_fn": [BYTECODE, None, None]}, "dropout_fn: holds a Python function"),
        ({"output_shape_type": "function"}, "output_shape_type: says 'function'"),
        ({"mask_module": "__main__"}, "mask_module: names the Python module '__main__'"),
        ({"note": ["x", {"deep": [BYTECODE]}]}, r"note\[1\] > deep\[0\]: holds marshalled"),
    ],
)
def test_callable_fields_are_refused_wherever_they_are(tmp_path, fields, message):
    path = write_h5(tmp_path / "m.h5", rnn_with(residual(**fields)))
    with pytest.raises(EdgesmithError, match=r"model > layers\[2\] > cell > " + message):
        check_model_file(path)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (layer("Dense", "d", activation="my_act"), " > activation: the activation 'my_act' is not"),
        (
            layer("Dense", "d", activation=keras_obj("function", "evil", module="__main__")),
            " > activation: the function 'evil' names the Python module '__main__'",
        ),
        (
            layer("Dense", "d", activation=keras_obj("function", "get_file", "keras.utils")),
            " > activation: the function 'get_file' .* is not a Keras built-in",
        ),
        (
            layer("Dense", "d", kernel_initializer={"class_name": "EvilInit", "config": {}}),
            " > kernel_initializer: 'EvilInit' is not one of the Keras built-ins",
        ),
        (
            layer("Conv2D", "c", kernel_regularizer="my_penalty"),
            " > kernel_regularizer: the regularizer 'my_penalty' is not",
        ),
        (keras_obj("GetItem", {"name": "g"}), ": GetItem 'g' is not one of"),  # an op, not a layer
        (keras_obj("Dense", {"name": "d"}, registered="Other"), ": Dense 'd' is the custom object"),
        (layer("ClassMethod", "m", cls_symbol="io.gfile.GFile"), ": ClassMethod 'm' is not one"),
        (layer("TFSMLayer", "s", filepath="/x"), ": TFSMLayer 's' is not one of"),
        (
            keras_obj("Lambda", {"name": "k3", "function": {"class_name": "__lambda__"}}),
            ": layer 'k3' is a Lambda",
        ),
        (
            layer("Dense", "d", dtype={"class_name": "__typespec__"}),
            " > dtype: '__typespec__' is not one of",
        ),
    ],
)
def test_anything_off_the_allowlist_is_refused_with_its_path(tmp_path, entry, message):
    path = write_zip(tmp_path / "m.keras", functional(layer("InputLayer", "in"), entry), "3.10.0")
    with pytest.raises(EdgesmithError, match=r"m.keras: model > layers\[1\]" + message):
        check_model_file(path)


def test_keras3_files_may_name_keras_modules_only(tmp_path):
    config = functional(keras_obj("Functional", {"name": "n", "layers": []}, "tf_keras.src"))
    assert check_model_file(write_zip(tmp_path / "k2.keras", config)).reasons == ()
    with pytest.raises(EdgesmithError, match="names the Python module 'tf_keras.src'"):
        check_model_file(write_zip(tmp_path / "k3.keras", config, version="3.10.0"))


def test_built_ins_of_every_family_are_accepted(tmp_path):
    policy = keras_obj("DTypePolicy", {"name": "mixed_float16"}, module="keras")
    tensor = {"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "keras_history": []}}
    config = functional(
        keras_obj("InputLayer", {"name": "in", "batch_shape": [None, 4], "dtype": policy}),
        keras_obj(
            "Dense",
            {
                "name": "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4",  # base64-looking, yet not bytecode
                "activation": keras_obj("function", "gelu", "keras.activations", "gelu"),
                "kernel_initializer": "he_normal",
                "bias_initializer": keras_obj("Constant", {"value": 0.1}, "keras.initializers"),
                "kernel_regularizer": keras_obj("L1L2", {"l1": 0.0}, "keras.regularizers"),
                "kernel_constraint": "max_norm",
            },
        ),
        keras_obj("Add", {"name": "add"}, "keras.src.ops.numpy", "Add"),  # x + y in Keras 3
        keras_obj("GetItem", {"name": "g"}, "keras.src.ops.numpy", "GetItem"),
        layer(
            "Bidirectional",
            "bi",
            layer=layer("LSTM", "l", activation="tanh", recurrent_activation="sigmoid"),
        ),
        layer("RNN", "r", cell=layer("StackedRNNCells", "s", cells=[layer("GRUCell", "g")])),
        layer("LeakyReLU", "lr", negative_slope=0.2),
        keras_obj("Dense", {"name": "o"}, registered="Dense"),
    )
    config["config"]["layers"][2]["inbound_nodes"] = [{"args": [tensor], "kwargs": {}}]
    report = check_model_file(write_zip(tmp_path / "m.keras", config, version="3.10.0"))
    assert report.reasons == ()


def test_an_rnn_cell_wrapper_model_is_refused_by_import_before_tensorflow(tmp_path, capsys):
    from edgesmith.app.cli import main

    evil = residual(residual_fn=[BYTECODE, None, None], residual_fn_type="lambda")
    path = write_h5(tmp_path / "evil.h5", rnn_with(evil))
    code = main(["import", "--model", str(path), "--data", "digits", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "model > layers[2] > cell > residual_fn" in err and "--trust-model" in err
    assert not (tmp_path / "o").exists()


def test_a_zip_member_with_an_unsupported_compression_method_is_one_line(tmp_path):
    """Issue 23: zipfile's NotImplementedError ended as exit 3."""
    path = write_zip(tmp_path / "m.keras", SAFE)
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            data[start + offset : start + offset + 2] = (99).to_bytes(2, "little")  # AES
            start += 4
    path.write_bytes(bytes(data))
    with pytest.raises(EdgesmithError, match="compression method is not supported") as caught:
        check_model_file(path)
    assert "\n" not in str(caught.value)


def test_an_unbuilt_sequential_h5_is_refused_on_load(tmp_path):
    """Issue 23: ``import`` of a Sequential saved before it was built ended as exit 3."""
    from edgesmith.tfkeras.model_io import load_keras_model

    unbuilt = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        layer("Dense", "d", units=10)]}}  # fmt: skip
    path = write_h5(tmp_path / "unbuilt.h5", unbuilt)
    with h5py.File(path, "a") as handle:
        handle.attrs["backend"] = "tensorflow"
        handle.create_group("model_weights")
    with pytest.raises(EdgesmithError, match="has no input shape"):
        load_keras_model(path)


def _sequential(*layers, **extra):
    return {"class_name": "Sequential", "config": {"name": "s", "layers": list(layers), **extra}}


def test_a_sequential_saved_unbuilt_is_refused_from_its_config(tmp_path):
    """Found by bench/hostile.py: it used to cost TensorFlow's import before the same refusal."""
    dense = {"class_name": "Dense", "config": {"name": "d", "units": 10}}
    for suffix, write in ((".h5", write_h5), (".keras", write_zip)):
        with pytest.raises(EdgesmithError, match="has no input shape"):
            check_model_file(write(tmp_path / f"unbuilt{suffix}", _sequential(dense)))
    shaped = {"class_name": "Dense", "config": {"name": "d", "units": 10, "input_shape": [4]}}
    built = (
        _sequential(
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4]}}, dense
        ),
        _sequential(shaped),
        _sequential(dense, build_input_shape=[None, 4]),
        _sequential({"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}}, dense),
    )
    for index, config in enumerate(built):
        assert not check_model_file(write_h5(tmp_path / f"built{index}.h5", config)).unbuilt
