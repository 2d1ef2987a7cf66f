"""LiteRT Quantizer recipes, recipe files, the mixed recipe and the manifest record: no model."""

import json

import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import Quantizer
from edgesmith.export.formats import ALL_FORMATS, FORMATS, LITERT_FORMATS, parse_formats
from edgesmith.export.litert_recipes import (
    BUILTIN,
    MAX_PROMOTED,
    RECIPE_KEY,
    check_scopes,
    exact_scope,
    mixed_recipe,
    read_recipe_file,
    static_rule,
)


def test_builtin_recipes_are_the_quantizers_own():
    recipe = pytest.importorskip("ai_edge_quantizer.recipe")
    for name, rules in BUILTIN.values():
        assert getattr(recipe, name)() == rules, name


def test_every_litert_format_but_the_file_one_has_a_builtin_recipe():
    assert set(BUILTIN) | {"tflite-recipe"} == set(LITERT_FORMATS)
    assert all(
        f.quantizer == "litert" and f.file_format == "tflite" for f in LITERT_FORMATS.values()
    )
    # parity as for the converter's integer formats: accuracy within the drop, agreement >= 50%
    assert all(f.tolerance is FORMATS["tflite-int8"].tolerance for f in LITERT_FORMATS.values())
    assert LITERT_FORMATS["tflite-w8a8"].integer and LITERT_FORMATS["tflite-w8a16"].integer


def test_formats_are_named_one_by_one_and_all_stays_the_converters():
    assert [f.name for f in parse_formats("tflite-int8,tflite-w8a16")] == [
        "tflite-int8",
        "tflite-w8a16",
    ]
    assert [f.name for f in parse_formats("all")] == list(FORMATS)
    with pytest.raises(EdgesmithError) as info:
        parse_formats("tflite-w8a4")
    assert all(name in str(info.value) for name in ALL_FORMATS)


def _doc(gains, *, float_acc=0.90, int8_acc=0.88):
    layers = [
        {"layer": f"conv{i}", "op": "CONV_2D", "tensor": f"m/conv{i}/Conv2D", "gain_points": g}
        for i, g in enumerate(gains)
    ]
    return {"float_accuracy_same_images": float_acc, "int8_accuracy": int8_acc, "layers": layers}


def test_mixed_recipe_promotes_the_largest_gains_until_the_gap_is_covered():
    mixed = mixed_recipe(_doc([0.5, 1.5, -0.2, 0.8]))  # gap 2.0 points
    assert [p["layer"] for p in mixed["promoted"]] == ["conv1", "conv3"]  # 1.5 + 0.8 >= 2.0
    assert mixed["int8_gap_points"] == pytest.approx(2.0)
    recipe = mixed["recipe"]
    assert recipe[0] == static_rule(8)
    assert recipe[1] == static_rule(16, exact_scope("m/conv1/Conv2D"), "CONV_2D")
    assert recipe[1]["op_config"]["activation_tensor_config"]["num_bits"] == 16
    assert len(recipe) == 3


def test_mixed_recipe_caps_the_promotions_and_skips_layers_that_gained_nothing():
    assert len(mixed_recipe(_doc([1.0] * 6, int8_acc=0.5))["promoted"]) == MAX_PROMOTED
    nothing = mixed_recipe(_doc([0.0, -0.1]))
    assert nothing["promoted"] == [] and nothing["recipe"] == [static_rule(8)]


def test_exact_scope_matches_only_its_op():
    import re

    pattern = re.compile(exact_scope("m/conv1/BiasAdd;m/conv1/Conv2D"))
    assert pattern.search("m/conv1/BiasAdd;m/conv1/Conv2D;")
    assert not pattern.search("m/conv10/BiasAdd;m/conv1/Conv2D;")
    assert not pattern.search("x/m/conv1/BiasAdd;m/conv1/Conv2D;")


def _write(tmp_path, content) -> str:
    path = tmp_path / "recipe.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ({"layers": []}, "expected a LiteRT Quantizer recipe (a JSON list of rules)"),
        ([], "a recipe is a non-empty JSON list of rules"),
        ([{"regex": ".*", "operation": "*"}], "rule 0 lacks algorithm_key"),
        ([{"regex": "(", "operation": "*", "algorithm_key": "x"}], "regex '(' is not valid"),
        (
            {"source_id": "other", RECIPE_KEY: {"recipe": [static_rule(8)]}},
            "measured on artifact 'other', not on the source being exported (mine)",
        ),
        (
            {"source_id": "mine", RECIPE_KEY: {"recipe": [static_rule(8)], "promoted": 5}},
            "promoted must be a list of layer objects. Received: 5",
        ),
        ("[" * 100_000, "not JSON (maximum recursion depth"),
        (["x" * 100_000], "rule 0 must be an object. Received: 'xxx"),
    ],
    ids=[
        "not-json", "an-object", "empty", "no-algorithm", "bad-regex", "other-source",
        "promoted-int", "nesting-bomb", "huge-rule",
    ],
)  # fmt: skip
def test_a_bad_recipe_file_is_one_short_line(tmp_path, content, message):
    with pytest.raises(EdgesmithError) as info:
        read_recipe_file(_write(tmp_path, content), source_id="mine")
    text = str(info.value)
    assert message in text and "\n" not in text and "--quantizer-recipe" in text
    assert len(text) < len(str(tmp_path)) + 200


def test_a_missing_or_special_recipe_file_is_one_line(tmp_path):
    import os

    with pytest.raises(EdgesmithError, match="--quantizer-recipe not found"):
        read_recipe_file(tmp_path / "gone.json")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(EdgesmithError, match="is a FIFO, not a regular file"):
        read_recipe_file(tmp_path / "fifo")


def test_a_sensitivity_document_gives_its_mixed_recipe(tmp_path):
    document = {"source_id": "mine", RECIPE_KEY: mixed_recipe(_doc([1.0, 0.5]))}
    spec = read_recipe_file(_write(tmp_path, document), source_id="mine")
    assert spec.name == "mixed-w8a8-w8a16" and len(spec.recipe) == 3
    assert [p["layer"] for p in spec.promoted] == ["conv0", "conv1"]
    assert spec.sha256 and len(spec.sha256) == 64


def test_the_quantizer_refuses_an_unknown_algorithm_in_one_line():
    pytest.importorskip("ai_edge_quantizer")
    from edgesmith.export.litert_quantizer import check_recipe

    rule = {**static_rule(8), "algorithm_key": "magic"}
    with pytest.raises(EdgesmithError) as info:
        check_recipe([rule], "--quantizer-recipe r.json")
    assert "refuses the recipe" in str(info.value) and "magic" in str(info.value)
    assert "\n" not in str(info.value)


def _report(*scopes):
    tensors = [{"name": name} for _, name in scopes]
    execution = [{"op": op, "inputs": [], "outputs": [i]} for i, (op, _) in enumerate(scopes)]
    return {"_tensors": tensors, "_execution": execution}


def test_a_rule_that_matches_no_op_of_the_model_is_refused():
    report = _report(("CONV_2D", "m/conv1/Conv2D"), ("FULLY_CONNECTED", "m/head/MatMul"))
    check_scopes(
        [static_rule(8), static_rule(16, exact_scope("m/conv1/Conv2D"), "CONV_2D")], report, "r"
    )
    with pytest.raises(EdgesmithError) as info:  # right name, wrong op
        check_scopes(
            [static_rule(16, exact_scope("m/conv1/Conv2D"), "DEPTHWISE_CONV_2D")], report, "r"
        )
    assert "r does not match the model: rule 0 (DEPTHWISE_CONV_2D" in str(info.value)
    with pytest.raises(EdgesmithError, match="matches none of its 2 ops"):
        check_scopes([static_rule(16, exact_scope("other/conv1"), "*")], report, "r")


def test_the_manifest_record_round_trips_and_refuses_what_it_does_not_know():
    record = {
        "backend": "litert",
        "package": "ai-edge-quantizer 0.10.0",
        "recipe_name": "static_wi8_ai8",
        "recipe_source": "builtin",
        "recipe": [static_rule(8)],
        "calibration_samples": 500,
        "validation": {"metrics": ["mse", "snr"], "samples": 8},
    }
    parsed = Quantizer.from_dict(record)
    assert parsed.to_dict() == record and parsed.recipe[0]["regex"] == ".*"
    with pytest.raises(EdgesmithError, match=r"quantizer.backend must be one of \('litert',\)"):
        Quantizer.from_dict({**record, "backend": "converter"})
    with pytest.raises(EdgesmithError, match="unknown key quantizer.recipes"):
        Quantizer.from_dict({**record, "recipes": []})
    with pytest.raises(EdgesmithError, match="quantizer lacks required key"):
        Quantizer.from_dict({k: v for k, v in record.items() if k != "recipe"})


def test_a_gain_that_equals_the_gap_covers_it_despite_float_rounding():
    # 0.9246 - 0.9236 is 0.0010000000000000009 in floats: the first layer's 0.1 covers it
    mixed = mixed_recipe(_doc([0.1, 0.08], float_acc=0.9246, int8_acc=0.9236))
    assert [p["layer"] for p in mixed["promoted"]] == ["conv0"]
    assert mixed["int8_gap_points"] == 0.1


def _typed_report(ops):
    """An op report of (op, [(dtype, constant), ...]) entries, as export/ops.py writes one."""
    tensors, execution = [], []
    for op, used in ops:
        indices = []
        for dtype, constant in used:
            tensors.append({"name": f"t{len(tensors)}", "dtype": dtype, "constant": constant})
            indices.append(len(tensors) - 1)
        execution.append({"op": op, "inputs": indices[:-1], "outputs": indices[-1:]})
    return {"float_ops": [], "_tensors": tensors, "_execution": execution}


def test_int8_only_names_16_bit_activations_and_int4_weights():
    from edgesmith.core.errors import CheckFailed
    from edgesmith.export.targets import check_int8_only

    int8 = _typed_report([("CONV_2D", [("int8", False), ("int8", True), ("int8", False)])])
    assert check_int8_only(int8, "x")["verdict"] == "pass"
    a16 = _typed_report(
        [
            ("QUANTIZE", [("int8", False), ("int16", False)]),
            ("CONV_2D", [("int16", False), ("int8", True), ("int64", True), ("int16", False)]),
            ("CONV_2D", [("int16", False), ("int4", True), ("int16", False)]),
        ]
    )
    with pytest.raises(CheckFailed) as info:
        check_int8_only(a16, "tflite-w8a16")
    assert str(info.value) == (
        "tflite-w8a16: --target int8-only: 3 op(s) use 16-bit activations: #0 QUANTIZE, "
        "#1 CONV_2D, #2 CONV_2D; 1 op(s) use int4 weights: #2 CONV_2D"
    )


def test_ethos_u_refuses_int4_and_blockwise_before_vela_runs():
    from edgesmith.export.targets import _ethos_u_refusal

    assert _ethos_u_refusal({"tensor_dtypes": {"int8": 30}}) is None
    reason = _ethos_u_refusal({"tensor_dtypes": {"int4": 2}, "_blockwise_tensors": 1})
    assert reason.startswith("2 int4 tensor(s) and 1 blockwise-quantised tensor(s): Ethos-U")


def test_a_vela_that_dies_on_a_signal_is_named_so():
    from edgesmith.export.vela import _vela_problem

    assert _vela_problem("Warning: last line\n", -8) == "Vela crashed (SIGFPE) on the file"
    assert _vela_problem("Error: bad op\nWarning: x\n", 1) == "Error: bad op"
