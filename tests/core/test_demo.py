"""``edgesmith demo``: the README's main command, end to end on the embedded digits data."""

import json

import pytest

from edgesmith.app.cli import main


@pytest.mark.slow
def test_demo_runs_every_stage_and_reuses_finished_steps(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "2"]) == 0
    printed, progress = capsys.readouterr()
    document = json.loads((out / "bench.json").read_text())
    names = {r["path"].split("/export/")[1] for r in document["results"]}
    assert names == {
        "dense/tflite-fp32",
        "dense/tflite-int8",
        "dense/onnx",
        "dense/onnx-int8",
        "prune75/tflite-int8",
        "channels/tflite-int8",
        "qat/tflite-int8",
        "distilled/tflite-int8",
    }
    for record in document["results"]:
        assert record["accuracy"] is not None and record["latency_ms"]["runs"] >= 300
    sizes = {r["path"].split("/export/")[1]: r for r in document["results"]}
    assert (
        sizes["channels/tflite-int8"]["size_bytes"] < 0.8 * sizes["dense/tflite-int8"]["size_bytes"]
    )
    assert (
        sizes["prune75/tflite-int8"]["gzip_bytes"] < 0.6 * sizes["dense/tflite-int8"]["gzip_bytes"]
    )
    assert "top-1 %" in printed and (out / "bench.md").is_file()
    assert (out / "plots" / "tradeoff.png").is_file()

    assert main(["demo", "--out", str(out), "--epochs", "2", "--quiet"]) == 0
    assert main(["demo", "--out", str(out), "--epochs", "3"]) == 2
    assert "made with" in capsys.readouterr().err


def test_demo_refuses_a_foreign_directory(tmp_path, capsys):
    (tmp_path / "x").write_text("mine")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "holds no demo" in capsys.readouterr().err
