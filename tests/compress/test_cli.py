import json
import subprocess
import sys

import pytest

from edgesmith.app.cli import main

BAD = [
    (
        ["prune", "--from", "{src}", "--sparsity", "1.2"],
        "sparsity must be in [0.0, 1.0). Received: 1.2",
    ),
    (["prune", "--from", "{src}"], "unstructured pruning needs a sparsity"),
    (
        ["prune", "--from", "{src}", "--structure", "2:4", "--sparsity", "0.6"],
        "2:4 sparsity is 0.5",
    ),
    (["prune", "--from", "{tmp}/absent", "--sparsity", "0.5"], "artifact directory not found"),
    (
        ["prune", "--from", "{src}", "--structure", "channels", "--widths", "stem_conv=8:"],
        "widths must be LAYER=COUNT items",
    ),
    (
        ["prune", "--from", "{src}", "--structure", "channels", "--widths", "stem=8"],
        "widths names 'stem', which produces no channel group; the groups (channels) are: "
        "stem_conv (16)",
    ),
    (
        ["prune", "--from", "{src}", "--structure", "channels", "--max-latency-ratio", "0.5"]
        + ["--widths", "stem_conv=8"],
        "max_latency_ratio searches every width itself; leave out widths",
    ),
    (
        ["prune", "--from", "{src}", "--max-latency-ratio", "0.5"],
        "--max-latency-ratio does not apply to --structure unstructured",
    ),
    (  # channel pruning never reads skip_layers: refused, not recorded as used
        ["prune", "--from", "{src}", "--structure", "channels", "--sparsity", "0.3"]
        + ["--skip-layers", "head"],
        "--skip-layers does not apply to --structure channels",
    ),
    (
        ["prune", "--from", "{src}", "--structure", "channels", "--mac-reduction", "1.5"],
        "mac_reduction must be in [0.0, 1.0)",
    ),
    (
        ["prune", "--from", "{src}", "--structure", "channels", "--param-reduction", "0.5"],
        "param_reduction is a target of the width search; give max_latency_ratio too",
    ),
    (["prune", "--from", "{tflite}", "--sparsity", "0.5"], "is a tflite artifact (tflite-int8)"),
    (["prune", "--from", "{tmp}/empty", "--sparsity", "0.5"], "is not an edgesmith artifact"),
    (["prune", "--from", "{src}", "--sparsity", "0.5", "--data", "digitz"], "unknown dataset"),
    (["prune", "--from", "{src}", "--sparsity", "0.5", "--epochs", "0"], "epochs must be"),
    (
        ["prune", "--from", "{src}", "--sparsity", "0.5", "--weight-decay", "-0.1"],
        "weight_decay must be in [0.0, 1.0]. Received: -0.1",
    ),
    (["prune", "--from", "{src}", "--sparsity", "0.5", "--teacher", "{tflite}"], "--teacher"),
    (["prune", "--from", "{src}", "--sparsity", "0.5", "--config", "{tmp}/bad.yaml"], "unknown"),
    (["qat", "--from", "{tflite}"], "compression needs a Keras artifact"),
    (["cluster", "--from", "{src}", "--clusters", "1"], "clusters must be a whole number >= 2"),
    (["sensitivity", "--from", "{src}", "--mode", "int8", "--sparsities", "a"], "--sparsities"),
    (["quantize", "--from", "{src}", "--max-accuracy-drop", "-1"], "max_accuracy_drop must be"),
    (["quantize", "--from", "{tflite}", "--max-accuracy-drop", "1"], "is a tflite artifact"),
    (["recipe", "--from", "{src}", "--recipe", "{tmp}/bad.yaml"], "unknown key(s) sparsityy"),
    (["distill", "--teacher", "{src}", "--student", "resnet9"], "unknown student 'resnet9'"),
    (["distill", "--teacher", "{tflite}", "--student", "resnet8"], "--teacher"),
    (["distill", "--teacher", "{src}", "--student", "{tflite}"], "--student"),
    (["distill", "--teacher", "{src}", "--student", "resnet8", "--alpha", "2"], "alpha must be"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_exit_2(
    tmp_path, run_cli, tflite_artifact, digits_artifact, args, message
):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("sparsityy: 0.5\n")
    fmt = {"tmp": tmp_path, "src": digits_artifact, "tflite": tflite_artifact}
    code, out, err = run_cli(
        "compress", *[a.format(**fmt) for a in args], "--out", tmp_path / "out"
    )
    assert code == 2, err
    assert err.startswith("edgesmith: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_validation_loads_no_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from edgesmith.app.cli import main\n"
        f"rc = main(['compress', 'prune', '--from', {str(tmp_path)!r}, '--sparsity', '1.5',"
        f" '--out', {str(tmp_path / 'o')!r}])\n"
        "assert rc == 2, rc\n"
        "assert 'tensorflow' not in sys.modules and 'tf_keras' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


@pytest.mark.parametrize(
    "technique", ["prune", "qat", "distill", "cluster", "sensitivity", "quantize", "recipe"]
)
def test_help_has_examples(capsys, technique):
    assert main(["compress", technique, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"edgesmith compress {technique} --" in out and "examples:" in out


def test_prune_cli_writes_json_manifest(digits_artifact, tmp_path, run_cli):
    code, out, err = run_cli(
        "compress",
        "prune",
        "--from",
        digits_artifact,
        "--sparsity",
        "0.5",
        "--epochs",
        "1",
        "--skip-layers",
        "stage3_block1_conv1",
        "--sparsity-scope",
        "layers",
        "--weight-decay",
        "0.001",
        "--json",
        "--out",
        tmp_path / "p",
    )
    assert code == 0, err
    manifest = json.loads(out)
    assert manifest["metrics"]["sparsity_per_layer"]["stage3_block1_conv1"] == 0.0
    assert manifest["config"]["weight_decay"] == 0.001
    assert manifest["metrics"]["sparsity_per_layer"]["stage2_block1_conv1"] == pytest.approx(
        0.5, abs=0.01
    )
    assert "prune epoch 1/1" in err
