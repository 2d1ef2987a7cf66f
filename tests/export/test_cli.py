import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgesmith.core.progress import silent


@pytest.fixture(scope="module")
def no_data_artifact(digits_artifact, tmp_path_factory):
    """The digits artifact, but its manifest points at data that is gone."""
    copy = tmp_path_factory.mktemp("nodata") / "a"
    shutil.copytree(digits_artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["dataset"]["spec"] = f"npz:{copy}/gone.npz"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def refused(run_cli, source, fmt, out) -> str:
    """The stderr of ``export --from source --format fmt --out out``, which must exit 2."""
    code, _, err = run_cli("export", "--from", source, "--format", fmt, "--out", out)
    assert code == 2, err
    return err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--format", "tflite-int9"],
            "unknown export format 'tflite-int9': expected one of "
            "tflite-fp32, tflite-fp16, tflite-dynamic, tflite-int8, tflite-int16x8, onnx, "
            "onnx-int8, onnx-from-tflite",
        ),
        (["--format", "onnx", "--opset", "30"], "--opset 30 cannot be written by the installed"),
        (["--format", "onnx", "--target", "tflm"], "--target tflm runs .tflite files only"),
        (["--format", "tflite-fp16", "--sparse"], "--sparse applies to tflite-fp32, tflite-int8"),
        (["--format", "tflite-int8", "--calibration-samples", "0"], "--calibration-samples"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    digits_artifact, tmp_path, run_cli, args, message
):
    out = tmp_path / "out"
    code, stdout, err = run_cli("export", "--from", digits_artifact, *args, "--out", out)
    assert code == 2
    assert err.startswith("edgesmith: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_non_keras_source_is_refused(exported_all, tmp_path, run_cli):
    source = exported_all["tflite-int8"].artifact.path
    err = refused(run_cli, source, "onnx", tmp_path / "o")
    assert "holds a tflite model" in err and "needs a Keras artifact" in err
    assert "is not an edgesmith artifact" in refused(run_cli, tmp_path, "onnx", tmp_path / "o")


def test_int8_without_calibration_data_is_refused(no_data_artifact, tmp_path, run_cli):
    out = tmp_path / "o"
    err = refused(run_cli, no_data_artifact, "tflite-int8", out)
    assert "int8 calibration and the parity check need the source's data" in err
    assert "--data SPEC" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_existing_format_dir_is_refused_before_work(digits_artifact, tmp_path, run_cli):
    (tmp_path / "o" / "onnx").mkdir(parents=True)
    (tmp_path / "o" / "onnx" / "x").write_text("x")
    assert "is not empty" in refused(run_cli, digits_artifact, "onnx", tmp_path / "o")


def test_cli_tflm_with_c_array_and_summary_table(digits_artifact, tmp_path, run_cli):
    from edgesmith.core.artifacts import read_artifact
    from edgesmith.export.c_array import read_c_array

    out = tmp_path / "mcu"
    code, stdout, err = run_cli(
        "export", "--from", digits_artifact, "--format", "tflite-int8", "--raw-input",
        "--target", "tflm", "--c-array", "--max-eval", "100", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    header, rule, row = stdout.strip().splitlines()
    assert header.split()[:3] == ["format", "size", "B"] and "parity" in header
    assert row.split()[0] == "tflite-int8" and " pass " in row and str(out / "tflite-int8") in row
    assert "tflite-int8: parity check on 100 images" in err  # progress on stderr
    artifact = read_artifact(out / "tflite-int8")
    # the file is checked by the interpreter it is made for, when that is installed
    from edgesmith.runtime import tflm_available

    runner = artifact.metrics.parity_runner
    assert runner == ("tflm" if tflm_available() else None)
    target = artifact.manifest.target
    assert target.verdict == "pass" and target.flash_bytes == artifact.metrics.size_bytes
    # TFLM (the mcu extra) measures the arena; without it the record keeps a labelled estimate.
    key = "arena_bytes" if target.arena_source == "measured" else "arena_bytes_estimate"
    assert getattr(target, key) > 0
    source = (out / "tflite-int8" / "model_data.cc").read_text()
    assert read_c_array(source) == artifact.model_path.read_bytes()
    assert "model_data.cc" in artifact.manifest.files
    assert artifact.manifest.c_array.symbol == "g_model_data"


def test_cli_target_failure_exits_1_without_publishing(digits_artifact, tmp_path, run_cli):
    out = tmp_path / "o"
    code, stdout, err = run_cli(
        "export", "--from", digits_artifact, "--format", "tflite-fp32", "--target", "int8-only",
        "--max-eval", "50", "--quiet", "--out", out,
    )  # fmt: skip
    assert code == 1
    assert err.strip() == (
        "edgesmith: error: tflite-fp32: --target int8-only: 15 op(s) use float tensors: "
        "#0 CONV_2D (float32), #1 CONV_2D (float32), #2 CONV_2D (float32), #3 ADD (float32), "
        "#4 CONV_2D (float32) and 10 more"
    )
    assert "target fail" in stdout and "(not written)" in stdout
    assert not out.exists()


def test_cli_json_lists_manifests(digits_artifact, tmp_path, run_cli):
    code, stdout, _ = run_cli(
        "export",
        "--from",
        digits_artifact,
        "--format",
        "onnx",
        "--max-eval",
        "50",
        "--quiet",
        "--json",
        "--out",
        tmp_path / "j",
    )
    assert code == 0
    (record,) = json.loads(stdout)
    assert record["technique"] == "onnx" and record["metrics"]["parity"] == "pass"
    assert record["path"] == str(tmp_path / "j" / "onnx")


def test_export_help_and_cli_import_stay_free_of_tensorflow():
    code = (
        "import sys, edgesmith.app.cli as c, edgesmith.export.exporter\n"
        "c.build_parser()\n"
        "assert 'tensorflow' not in sys.modules and 'tf_keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    help_text = subprocess.run(
        [sys.executable, "-m", "edgesmith", "export", "--help"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for word in ("--raw-input", "--io-dtype", "--target", "--c-array", "examples:", "onnx-int8"):
        assert word in help_text


def test_export_input_checks_load_no_tensorflow(tmp_path):
    # prepare() validates formats, source and output before any converter: a typo must not cost
    # TensorFlow's import (it once imported the builders first, for one tuple of names)
    fixture = Path(__file__).resolve().parents[1] / "runtime" / "fixtures" / "artifact_tflite"
    code = (
        "import sys\n"
        "from edgesmith.core.errors import EdgesmithError\n"
        "from edgesmith.export import ExportOptions\n"
        "from edgesmith.export.exporter import prepare\n"
        f"for formats in ('tflite-int9', 'tflite-int8'):\n"
        f"    try:\n"
        f"        prepare({str(fixture)!r}, formats, {str(tmp_path / 'o')!r}, ExportOptions())\n"
        "    except EdgesmithError as exc:\n"
        "        print(exc)\n"
        "print(sorted(m for m in ('tensorflow', 'tf_keras') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = run.stdout.strip().splitlines()
    assert "tflite-int9" in lines[0] and lines[-1] == "[]", run.stdout


def test_data_option_replaces_the_source_data(digits_artifact, tmp_path, run_cli):
    from edgesmith.export import export

    (artifact,) = export(
        digits_artifact, "onnx", tmp_path / "d", data="digits?eval=40", report=silent
    )
    assert artifact.metrics.num_eval == 40
    assert artifact.manifest.config["data"] == "digits?eval=40"
    code, _, err = run_cli(
        "export",
        "--from",
        digits_artifact,
        "--format",
        "onnx",
        "--data",
        "synthetic?shape=16x16x3",
        "--out",
        tmp_path / "s",
    )
    assert code == 2 and "has images shaped [16, 16, 3] but the model takes [8, 8, 1]" in err
    assert not (tmp_path / "s").exists()
