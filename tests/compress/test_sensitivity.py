import json

import pytest

from edgesmith.compress.config import AutotuneConfig, QatConfig, SensitivityConfig
from edgesmith.errors import EdgesmithError


def test_int8_sensitivity_ranks_every_kernel_op(tiny_artifact, tmp_path, quiet):
    from edgesmith.compress.sensitivity import analyse_sensitivity

    config = SensitivityConfig(max_eval=200, calibration_samples=50)
    document = analyse_sensitivity(tiny_artifact, config, tmp_path / "s.json", report=quiet)
    assert json.loads((tmp_path / "s.json").read_text()) == document
    layers = {entry["layer"]: entry for entry in document["layers"]}
    assert set(layers) == {"conv1", "conv2", "conv3", "head"}
    assert layers["conv1"]["fused"] == ["conv1"]  # BN and ReLU fold into it
    gains = [entry["gain_points"] for entry in document["layers"]]
    assert gains == sorted(gains, reverse=True)
    for entry in layers.values():
        expected = 100 * (entry["accuracy_with_layer_float"] - document["int8_accuracy"])
        assert entry["gain_points"] == pytest.approx(expected, abs=1e-3)
        assert 0.0 < entry["rmse_over_scale"] < 5.0
    assert "| conv1 |" in (tmp_path / "s.md").read_text()


def test_mixed_int8_leaves_the_named_op_float(tiny_artifact):
    from ai_edge_litert.interpreter import Interpreter

    from edgesmith.compress import finetune, sensitivity

    src = finetune.load_source(tiny_artifact)
    calibration = sensitivity.calibration_inputs(src.dataset, src.norm, 20)
    ops = sensitivity.quantization_errors(src.model, calibration)
    conv1 = next(op for op in ops if op["layers"] == ["conv1"])

    def op_names(data):
        return [op["op_name"] for op in Interpreter(model_content=data)._get_ops_details()]

    full = op_names(sensitivity.mixed_int8(src.model, calibration, []))
    mixed = op_names(sensitivity.mixed_int8(src.model, calibration, [conv1["tensor"]]))
    assert full[0] == "QUANTIZE"  # float input quantised before the int8 first conv
    assert mixed[0] == "CONV_2D" and mixed[1] == "QUANTIZE"  # the first conv now runs float


def test_prune_sensitivity_sweep(tiny_artifact, tmp_path, quiet):
    from edgesmith.compress.sensitivity import analyse_sensitivity

    config = SensitivityConfig(mode="prune", sparsities=(0.5, 0.95), max_eval=300)
    document = analyse_sensitivity(tiny_artifact, config, tmp_path / "p.json", report=quiet)
    assert {e["layer"] for e in document["layers"]} == {"conv1", "conv2", "conv3", "head"}
    # pruning 95% of a layer hurts at least as much as 50% for the most sensitive layer
    top = document["layers"][0]["drop_points"]
    assert top["0.95"] >= top["0.5"] and top["0.95"] > 1


def test_sensitivity_wants_a_json_path(tiny_artifact, tmp_path, quiet):
    from edgesmith.compress.sensitivity import analyse_sensitivity

    with pytest.raises(EdgesmithError, match="writes a .json file"):
        analyse_sensitivity(tiny_artifact, SensitivityConfig(), tmp_path / "s.txt", report=quiet)


def test_budget_records_attempts_in_order(tiny_artifact, tmp_path, quiet):
    from edgesmith.compress.autotune import SUMMARY, quantize_within_budget

    config = AutotuneConfig(
        max_accuracy_drop=0.0,
        qat=QatConfig(epochs=1),
        max_float_layers=1,
        max_eval=300,
        calibration_samples=50,
    )
    chosen = quantize_within_budget(tiny_artifact, config, tmp_path / "b", report=quiet)
    summary = json.loads((tmp_path / "b" / SUMMARY).read_text())
    names = [a["name"] for a in summary["attempts"]]
    assert names[0] == "ptq-int8"
    first_met = next((i for i, a in enumerate(summary["attempts"]) if a["met"]), None)
    if first_met is not None:  # stops at the first attempt within budget
        assert first_met == len(names) - 1 and summary["chosen"] == names[first_met]
    else:
        assert names == ["ptq-int8", "qat-int8", "ptq-int8 with 1 float op(s)"]
    for attempt in summary["attempts"]:
        assert attempt["drop_points"] == pytest.approx(
            100 * (summary["float_accuracy"] - attempt["accuracy"]), abs=1e-3
        )
        assert attempt["met"] == (attempt["drop_points"] <= 0.0)
    assert chosen.format == "tflite"
    assert not (tmp_path / "b.partial").exists()


def test_budget_float_fallback_attempt(tiny_artifact, tmp_path, quiet):
    from edgesmith.compress.autotune import SUMMARY, quantize_within_budget

    config = AutotuneConfig(
        max_accuracy_drop=100.0, attempts=("float",), max_eval=200, calibration_samples=50
    )
    chosen = quantize_within_budget(tiny_artifact, config, tmp_path / "f", report=quiet)
    summary = json.loads((tmp_path / "f" / SUMMARY).read_text())
    (attempt,) = summary["attempts"]
    assert attempt["name"] == "ptq-int8 with 1 float op(s)" and attempt["met"]
    assert chosen.manifest["technique"] == "tflite-int8-mixed"
    assert chosen.manifest["metrics"]["float_layers"] == attempt["float_layers"]
    assert chosen.manifest["metrics"]["accuracy"] == attempt["accuracy"]
