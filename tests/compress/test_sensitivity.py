import json
import struct
import sys

import pytest

from edgesmith.app.cli import main
from edgesmith.compress.config import AutotuneConfig, QatConfig, SensitivityConfig
from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime.plots import plots_available

PLOT_EXTRA = 'pip install "edgesmith[plots]"'


def png_size(path) -> tuple[int, int]:
    """Width and height of a PNG that decodes and is not blank."""
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    pixels = imread(path)
    assert pixels.shape[:2] == (height, width) and pixels.std() > 0.05
    return width, height


@pytest.fixture()
def no_matplotlib(monkeypatch):
    """Make matplotlib look uninstalled: its import fails and find_spec finds nothing."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


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
    assert document["num_eval"] == 200
    # the float model on the same images: int8 stays within 10 points of it
    assert document["float_accuracy_same_images"] == pytest.approx(
        document["int8_accuracy"], abs=0.1
    )
    markdown = (tmp_path / "s.md").read_text()
    assert "| conv1 |" in markdown
    if plots_available():  # the bar chart: one row per layer, so about as tall as wide
        width, height = png_size(tmp_path / "s.png")
        assert 600 < width < 1200 and 400 < height < 1000
        assert "![sensitivity](s.png)" in markdown
    else:
        assert not (tmp_path / "s.png").exists()


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


def test_prune_plot_and_both_panels_in_one_figure(tiny_artifact, tmp_path):
    pytest.importorskip("matplotlib")
    from edgesmith.compress.sensitivity import analyse_sensitivity, write_plot

    lines = []
    config = SensitivityConfig(mode="prune", sparsities=(0.5, 0.9), max_eval=200)
    prune = analyse_sensitivity(tiny_artifact, config, tmp_path / "p.json", report=lines.append)
    one = png_size(tmp_path / "p.png")
    assert 600 < one[0] < 1200 and 400 < one[1] < 1000
    assert "![sensitivity](p.png)" in (tmp_path / "p.md").read_text()
    assert lines[-1] == f"sensitivity: wrote {tmp_path / 'p.json'}, {tmp_path / 'p.md'}, " + str(
        tmp_path / "p.png"
    )
    int8 = {  # drawn as given: a hand-made int8 document is enough for the figure
        **{k: prune[k] for k in ("source", "dataset", "float_accuracy", "num_eval")},
        "config": SensitivityConfig().to_dict(),
        "float_accuracy_same_images": 0.9,
        "int8_accuracy": 0.88,
        "layers": [
            {"layer": name, "gain_points": gain, "rmse_over_scale": 0.3}
            for name, gain in [("conv2", 1.5), ("conv1", 0.5), ("head", -0.5)]
        ],
    }
    both = png_size(write_plot([int8, prune], tmp_path / "both.png"))
    assert both[0] > 1.8 * one[0] and both[1] == one[1]  # two panels side by side


def test_plot_skipped_without_matplotlib(tiny_artifact, tmp_path, no_matplotlib):
    from edgesmith.compress.sensitivity import analyse_sensitivity, write_plot

    lines = []
    config = SensitivityConfig(mode="prune", sparsities=(0.5,), max_eval=100)
    document = analyse_sensitivity(tiny_artifact, config, tmp_path / "p.json", report=lines.append)
    assert json.loads((tmp_path / "p.json").read_text()) == document
    markdown = (tmp_path / "p.md").read_text()
    assert "| conv1 |" in markdown and "![" not in markdown
    assert not (tmp_path / "p.png").exists()
    skipped = [line for line in lines if "plot skipped" in line]
    assert len(skipped) == 1 and PLOT_EXTRA in skipped[0]
    with pytest.raises(EdgesmithError, match="edgesmith\\[plots\\]"):
        write_plot(document, tmp_path / "p.png")


def run_prune_cli(tiny_artifact, out, *flags):
    return main(
        ["compress", "sensitivity", "--from", str(tiny_artifact), "--mode", "prune"]
        + ["--sparsities", "0.5", "--max-eval", "100", "--out", str(out), "--quiet", *flags]
    )


def test_cli_no_plot(tiny_artifact, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert run_prune_cli(tiny_artifact, out, "--no-plot") == 0
    stdout, stderr = capsys.readouterr()
    assert stdout.strip() == str(out) and stderr == ""
    assert out.with_suffix(".md").exists() and not out.with_suffix(".png").exists()


def test_cli_says_once_that_the_plot_was_skipped(tiny_artifact, tmp_path, capsys, no_matplotlib):
    out = tmp_path / "p.json"
    assert run_prune_cli(tiny_artifact, out) == 0
    stdout, stderr = capsys.readouterr()
    assert stdout.strip() == str(out)
    assert out.with_suffix(".md").exists() and not out.with_suffix(".png").exists()
    # one line, even with --quiet
    assert stderr == f"edgesmith: note: plot skipped: the plot needs matplotlib: {PLOT_EXTRA}\n"


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
    assert chosen.manifest.technique == "tflite-int8-mixed"
    assert list(chosen.metrics.float_layers) == attempt["float_layers"]
    assert chosen.metrics.accuracy == attempt["accuracy"]
