import json
import subprocess
import sys

import numpy as np
import pytest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "digitz", "--out", "{tmp}/a"], "unknown dataset 'digitz'"),
        (["train", "--epochs", "0", "--out", "{tmp}/a"], "epochs must be a whole number >= 1"),
        (
            ["train", "--model", "resnet9", "--epochs", "1", "--out", "{tmp}/a"],
            "unknown model 'resnet9'",
        ),
        (["train", "--data", "npz:{tmp}/missing.npz", "--out", "{tmp}/a"], "file not found"),
        (["train", "--out", "{tmp}/full"], "is not empty"),
        (["train", "--config", "{tmp}/nope.yaml", "--out", "{tmp}/a"], "config file not found"),
        (
            ["import", "--model", "{tmp}/m.keras", "--data", "digits", "--out", "{tmp}/a"],
            "model file not found",
        ),
        (
            [
                "import",
                "--model",
                "x.keras",
                "--data",
                "digits",
                "--normalization",
                "unity",
                "--out",
                "{tmp}/a",
            ],
            "unknown normalization 'unity'",
        ),
        (["info", "{tmp}/full"], "no manifest.json"),
        (["info", "{tmp}/absent"], "not found"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, run_cli, args, message):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    code, out, err = run_cli(*[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    assert err.startswith("edgesmith: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.partial").exists()


def test_npz_without_expected_arrays(tmp_path, run_cli):
    np.savez(tmp_path / "d.npz", images=np.zeros((3, 8, 8)))
    code, _, err = run_cli(
        "train",
        "--data",
        f"npz:{tmp_path}/d.npz",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "a"),
    )
    assert code == 2 and "lacks array(s) x_train, y_train, x_test, y_test" in err


def test_corrupt_manifest(tmp_path, run_cli):
    (tmp_path / "manifest.json").write_text("{oops")
    code, _, err = run_cli("info", str(tmp_path))
    assert code == 2 and "is corrupt" in err


@pytest.mark.slow
def test_train_info_and_config_file(tmp_path, run_cli):
    (tmp_path / "recipe.yaml").write_text("model: seed_cnn\nepochs: 1\nbatch_size: 64\n")
    code, out, err = run_cli(
        "train",
        "--config",
        str(tmp_path / "recipe.yaml"),
        "--epochs",
        "2",
        "--out",
        str(tmp_path / "run"),
    )
    assert code == 0 and out.strip() == str(tmp_path / "run")
    assert "epoch   2/2" in err and "eval accuracy" in err
    code, out, _ = run_cli("info", str(tmp_path / "run"))
    assert code == 0
    for field in ("seed_cnn", "accuracy", "normalization unit", "digits", "tf-keras"):
        assert field in out
    code, out, _ = run_cli("info", str(tmp_path / "run"), "--json")
    manifest = json.loads(out)
    assert manifest["config"]["epochs"] == 2 and manifest["config"]["batch_size"] == 64


@pytest.mark.slow
def test_quiet_and_json(tmp_path, run_cli):
    code, out, err = run_cli(
        "train",
        "--model",
        "seed_cnn",
        "--epochs",
        "1",
        "--quiet",
        "--json",
        "--data",
        "synthetic?n=64&shape=8x8",
        "--out",
        str(tmp_path / "q"),
    )
    assert code == 0 and err == ""
    assert json.loads(out)["dataset"]["spec"] == "synthetic?n=64&shape=8x8"


def test_module_entry_point_and_help_examples():
    result = subprocess.run(
        [sys.executable, "-m", "edgesmith", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "examples:" in result.stdout and "--resume" in result.stdout
    assert "npz:PATH" in result.stdout
    version = subprocess.run(
        [sys.executable, "-m", "edgesmith", "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.stdout.startswith("edgesmith ")


def test_missing_subcommand_is_usage_error():
    result = subprocess.run(
        [sys.executable, "-m", "edgesmith"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "usage:" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "required: COMMAND" in lines[0] and "edgesmith --help" in lines[0]


def test_a_bad_flag_value_is_one_line_naming_it():
    result = subprocess.run(
        [sys.executable, "-m", "edgesmith", "bench", "m.tflite", "--threads", "abc"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "edgesmith: error: argument --threads: expected a whole number >= 1. "
        "Received: 'abc' (see edgesmith bench --help)"
    )
