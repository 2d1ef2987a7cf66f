"""The LiteRT Quantizer formats end to end: export, parity, manifest, targets, bad input.

The digits ResNet-8 (the shared training fixture) goes through every built-in recipe beside the
converter's own int8 file, so each LiteRT file is judged by the same parity rule and compared
with the converter's numbers; the tiny logits CNN carries the target checks.
"""

import hashlib
import json

import numpy as np
import pytest

from edgesmith.core.artifacts import read_artifact
from edgesmith.core.progress import silent
from edgesmith.export.litert_recipes import BUILTIN, exact_scope, static_rule
from edgesmith.export.vela import vela_available

pytest.importorskip("ai_edge_quantizer")

QUIET = {"report": silent}
STATIC = ("tflite-w8a8", "tflite-w8a16")


@pytest.fixture(scope="module")
def litert_exports(digits_artifact, tmp_path_factory):
    """tflite-int8 (the converter) and every built-in LiteRT recipe, from one run."""
    from edgesmith.export import export_formats

    out = tmp_path_factory.mktemp("litert") / "x"
    results = export_formats(digits_artifact, ["tflite-int8", *BUILTIN], out, **QUIET)
    return {r.name: r for r in results}


@pytest.fixture(scope="module")
def sensitivity_json(logits_artifact, tmp_path_factory):
    """compress sensitivity (int8 mode) on the tiny logits CNN, with its mixed recipe."""
    from edgesmith.compress.config import SensitivityConfig
    from edgesmith.compress.sensitivity import analyse_sensitivity

    path = tmp_path_factory.mktemp("sens") / "s.json"
    config = SensitivityConfig(max_eval=200, calibration_samples=100)
    analyse_sensitivity(logits_artifact, config, path, report=silent, plot=False)
    return path


@pytest.mark.parametrize("name", list(BUILTIN))
def test_each_recipe_exports_passes_parity_and_records_its_recipe(litert_exports, name):
    result = litert_exports[name]
    assert result.failure is None and result.artifact is not None
    artifact = read_artifact(result.artifact.path)  # hashes and the typed manifest verified
    manifest = artifact.manifest
    assert (manifest.technique, manifest.format) == (name, "tflite")
    # the converter's int8 thresholds: accuracy within 1 point (McNemar), agreement >= 50%
    test = manifest.metrics.accuracy_test
    assert manifest.metrics.parity == "pass" and test["verdict"] == "pass"
    assert test["max_drop_points"] == 1.0 and manifest.metrics.agreement >= 0.5
    record = manifest.quantizer
    assert record.backend == "litert" and record.package.startswith("ai-edge-quantizer 0.")
    assert (record.recipe_name, list(record.recipe)) == BUILTIN[name]
    assert record.recipe_source == "builtin" and record.recipe_sha256 is None
    if name in STATIC:
        assert record.calibration_samples == 500 and record.calibration_rule == "min-max"
    else:
        assert record.calibration_samples == 0 and record.calibration_rule is None
    validation = record.validation
    assert validation["samples"] == 8 and validation["metrics"] == ["mse", "snr"]
    snrs = [t["snr"] for t in validation["lowest_snr"]]
    assert snrs == sorted(snrs) and validation["tensors_compared"] > 10
    assert all(v["snr"] > 10 for v in validation["output"].values())


def test_dtypes_sizes_and_ops_say_what_each_recipe_is(litert_exports):
    manifests = {name: r.artifact.manifest for name, r in litert_exports.items()}
    dtypes = {name: m.input.dtype for name, m in manifests.items()}
    assert dtypes == {
        "tflite-int8": "int8",
        "tflite-w8a8": "int8",
        "tflite-w8a16": "int16",
        "tflite-w8-dynamic": "float32",
        "tflite-w4-weight-only": "float32",
        "tflite-w4-block32": "float32",
    }
    ops = {name: m.ops for name, m in manifests.items()}
    assert ops["tflite-w8a8"].num_float_ops == 0 and ops["tflite-w8a16"].num_float_ops == 0
    assert "int16" in ops["tflite-w8a16"].tensor_dtypes
    assert ops["tflite-w4-weight-only"].operators["DEQUANTIZE"] >= 9  # one per conv/dense
    assert "int4" in ops["tflite-w4-weight-only"].tensor_dtypes
    assert ops["tflite-w4-block32"].tensor_dtypes.get("int4") == 1  # the dense head only
    size = {name: m.metrics.size_bytes for name, m in manifests.items()}
    # 78k weights: int8 ~96 KB whichever quantizer; int4 ~54 KB; blockwise int4 only the head
    assert abs(size["tflite-w8a8"] - size["tflite-int8"]) < 0.02 * size["tflite-int8"]
    assert size["tflite-w4-weight-only"] < 0.6 * size["tflite-w8a8"]
    assert size["tflite-w4-block32"] > 3 * size["tflite-w8a8"]


def test_min_max_calibration_brings_the_files_as_close_to_float_as_the_converters(
    litert_exports,
):
    diff = {n: r.artifact.manifest.metrics.mean_abs_diff for n, r in litert_exports.items()}
    # measured: w8a8 1.7e-3 against the converter's 1.8e-3; w8a16 ~4e-4 (16-bit activations)
    assert diff["tflite-w8a8"] < 1.5 * diff["tflite-int8"]
    assert diff["tflite-w8a16"] < 0.5 * diff["tflite-int8"]


def test_the_sensitivity_file_gives_a_mixed_recipe_that_exports(
    logits_artifact, sensitivity_json, tmp_path
):
    from edgesmith.export import export_formats

    document = json.loads(sensitivity_json.read_text())
    mixed = document["litert_recipe"]
    layers = {e["layer"]: e for e in document["layers"]}
    assert all(p["tensor"] == layers[p["layer"]]["tensor"] for p in mixed["promoted"])
    assert len(mixed["recipe"]) == 1 + len(mixed["promoted"])
    (result,) = export_formats(
        logits_artifact,
        "tflite-recipe",
        tmp_path / "x",
        quantizer_recipe=str(sensitivity_json),
        **QUIET,
    )
    assert result.failure is None
    manifest = read_artifact(result.artifact.path).manifest
    assert manifest.metrics.parity == "pass"
    record = manifest.quantizer
    assert record.recipe_name == "mixed-w8a8-w8a16" and list(record.recipe) == mixed["recipe"]
    assert record.recipe_sha256 == hashlib.sha256(sensitivity_json.read_bytes()).hexdigest()
    assert list(record.promoted or []) == mixed["promoted"]
    assert ("int16" in manifest.ops.tensor_dtypes) == bool(mixed["promoted"])


def test_a_per_layer_rule_gives_that_layer_16_bit_activations(
    logits_artifact, sensitivity_json, tmp_path
):
    from edgesmith.export import export_formats

    first = json.loads(sensitivity_json.read_text())["layers"][0]
    recipe = [static_rule(8), static_rule(16, exact_scope(first["tensor"]), first["op"])]
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    (result,) = export_formats(
        logits_artifact, "tflite-recipe", tmp_path / "x", quantizer_recipe=str(path), **QUIET
    )
    manifest = result.artifact.manifest
    assert manifest.metrics.parity == "pass" and manifest.quantizer.recipe_name == "file"
    ops = manifest.ops
    assert ops.num_float_ops == 0 and ops.operators["QUANTIZE"] >= 2  # int8 <-> int16
    assert "int16" in ops.tensor_dtypes and manifest.input.dtype == "int8"


@pytest.mark.parametrize(
    ("target", "formats", "refused"),
    [
        (
            "tflm",
            ["tflite-w8a16", "tflite-w4-weight-only"],
            {"tflite-w4-weight-only": "DEQUANTIZE op(s) of int4 weights"},
        ),
        ("int8-only", ["tflite-w8a8", "tflite-w8a16"], {"tflite-w8a16": "16-bit activations"}),
        pytest.param(
            "ethos-u55-128",
            ["tflite-w8a8", "tflite-w4-weight-only"],
            {"tflite-w4-weight-only": "int4 tensor(s): Ethos-U runs int8 and int16 tensors"},
            marks=pytest.mark.skipif(not vela_available(), reason="ethos-u-vela not installed"),
        ),
    ],
)
def test_targets_say_plainly_what_a_recipe_cannot_run(
    logits_artifact, tmp_path, target, formats, refused
):
    from edgesmith.export import export_formats

    results = export_formats(logits_artifact, formats, tmp_path / "x", target=target, **QUIET)
    for result in results:
        if result.name in refused:
            assert result.artifact is None and result.failed_check.value == "target"
            assert refused[result.name] in result.failure and "\n" not in result.failure
            assert result.failure.startswith(f"{result.name}: --target {target}: ")
        else:
            assert result.failure is None, result.failure
            assert result.artifact.manifest.target.verdict == "pass"


def test_blockwise_weights_are_refused_by_name_on_tflm_and_ethos_u(litert_exports, tmp_path):
    from edgesmith.core.errors import CheckFailed
    from edgesmith.export.ops import tflite_op_report
    from edgesmith.export.targets import check_target

    path = litert_exports["tflite-w4-block32"].artifact.model_path
    report = tflite_op_report(path.read_bytes())
    with pytest.raises(CheckFailed) as info:
        check_target("tflm", report, path, "tflite-w4-block32")
    assert "1 blockwise-quantised weight tensor(s)" in str(info.value)
    with pytest.raises(CheckFailed, match="1 int4 tensor.* and 1 blockwise-quantised tensor"):
        check_target("ethos-u55-128", report, path, "tflite-w4-block32")


def test_a_blockwise_recipe_on_a_layer_it_cannot_split_is_one_line(logits_artifact, tmp_path):
    from edgesmith.core.errors import EdgesmithError
    from edgesmith.export import export_formats

    # the logits head takes 8 inputs: no block of 32 fits
    with pytest.raises(EdgesmithError, match="tflite-w4-block32: the LiteRT Quantizer failed"):
        export_formats(logits_artifact, "tflite-w4-block32", tmp_path / "x", **QUIET)
    assert not (tmp_path / "x").exists()


def test_raw_input_w8a8_takes_pixel_minus_128_as_the_converters_file_does(
    logits_artifact, tmp_path
):
    from edgesmith.export import export_formats

    (result,) = export_formats(
        logits_artifact, "tflite-w8a8", tmp_path / "x", raw_input=True, **QUIET
    )
    manifest = result.artifact.manifest
    assert manifest.metrics.parity == "pass" and manifest.raw_input_fold == "affine"
    quant = manifest.input.quantization
    assert quant.scale == pytest.approx(1.0, abs=1e-6) and quant.zero_point == -128


def test_w8a16_runs_in_tflm_with_its_arena_measured(logits_artifact, tmp_path):
    from edgesmith.export import export_formats
    from edgesmith.runtime import tflm_available

    if not tflm_available():
        pytest.skip("tflite-micro is not installed")
    (w8a8, w8a16) = export_formats(logits_artifact, STATIC, tmp_path / "x", target="tflm", **QUIET)
    arenas = [r.artifact.manifest.target.arena_bytes for r in (w8a8, w8a16)]
    assert w8a16.artifact.manifest.metrics.parity_runner == "tflm"
    # 16-bit activations: the activation buffers (the arena's head) double
    heads = [r.artifact.manifest.target.arena_head_bytes for r in (w8a8, w8a16)]
    assert 1.7 < heads[1] / heads[0] < 2.3 and arenas[1] > arenas[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "tflite-recipe"], "--format tflite-recipe needs --quantizer-recipe FILE"),
        (
            ["--format", "tflite-int8", "--quantizer-recipe", "r.json"],
            "--quantizer-recipe applies to --format tflite-recipe",
        ),
        (
            ["--format", "tflite-w8a8", "--quantizer-calibration", "mean"],
            "--quantizer-calibration",
        ),
    ],
)
def test_bad_litert_requests_are_one_line_exit_2(digits_artifact, tmp_path, run_cli, args, message):
    out = tmp_path / "out"
    code, _, err = run_cli("export", "--from", digits_artifact, *args, "--out", out)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_recipe_for_another_model_is_one_line_exit_2(digits_artifact, tmp_path, run_cli):
    recipe = [static_rule(8), static_rule(16, exact_scope("other_model/conv/Conv2D"), "CONV_2D")]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(recipe))
    out = tmp_path / "out"
    code, _, err = run_cli(
        "export", "--from", digits_artifact, "--format", "tflite-recipe",
        "--quantizer-recipe", path, "--out", out,
    )  # fmt: skip
    # after the progress lines (the model had to be converted to see its ops): one error line
    (error,) = [line for line in err.splitlines() if line.startswith("edgesmith: error:")]
    assert code == 2 and err.strip().splitlines()[-1] == error
    assert f"--quantizer-recipe {path} does not match the model: rule 1 (CONV_2D" in error
    assert not out.exists()


def test_a_sensitivity_file_of_another_model_is_one_line_exit_2(
    logits_artifact, sensitivity_json, tmp_path, run_cli
):
    document = json.loads(sensitivity_json.read_text())
    document["source_id"] = "0" * 64
    path = tmp_path / "other.json"
    path.write_text(json.dumps(document))
    code, _, err = run_cli(
        "export", "--from", logits_artifact, "--format", "tflite-recipe",
        "--quantizer-recipe", path, "--out", tmp_path / "out",
    )  # fmt: skip
    assert code == 2 and "its sensitivity was measured on artifact '000" in err
    assert len(err.strip().splitlines()) == 1


def test_without_the_quantizer_installed_the_hint_is_one_line(
    digits_artifact, tmp_path, run_cli, monkeypatch
):
    from edgesmith.export import litert_quantizer

    monkeypatch.setattr(litert_quantizer, "available", lambda: False)
    out = tmp_path / "out"
    code, _, err = run_cli(
        "export", "--from", digits_artifact, "--format", "tflite-w8a16", "--out", out
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert 'pip install "edgesmith[export]"' in err and not out.exists()


def test_a_file_without_signature_gets_one_and_still_runs_the_same():
    from ai_edge_litert.interpreter import Interpreter

    from edgesmith.export.litert_quantizer import with_signature
    from edgesmith.tfkeras.backend import keras, tf

    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    stripped = _without_signatures(data)
    assert Interpreter(model_content=stripped).get_signature_list() == {}
    signed = with_signature(stripped)
    assert list(Interpreter(model_content=signed).get_signature_list()) == ["serving_default"]
    assert with_signature(signed) == signed
    x = np.random.default_rng(0).random((1, 4, 4, 1), dtype=np.float32)
    outputs = []
    for content in (stripped, signed):
        interpreter = Interpreter(model_content=content)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def _without_signatures(data: bytes) -> bytes:
    import flatbuffers

    from edgesmith.export.ops import read_tflite

    model = read_tflite(data)
    model.signatureDefs = []
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
