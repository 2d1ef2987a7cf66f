"""Keras 3 on JAX trains on CPU, distils, and its artifact exports by Keras 3 with parity.

Each training runs in its own process through the CLI, as users run it: Keras 3 must be imported
with its backend chosen first, in a process that has not loaded tf_keras.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgesmith.core.outputs import mark_staging_dir

pytest.importorskip("jax")
pytest.importorskip("keras")


def edgesmith(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgesmith.app.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_jax_trains_digits_and_the_int8_export_passes_parity(tmp_path):
    out = tmp_path / "r8"
    train = edgesmith(
        "train", "--backend", "jax", "--data", "digits", "--model", "resnet8", "--epochs", "3",
        "--accelerator", "cpu", "--augment", "crop,erase", "--out", str(out), "--json",
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    manifest = json.loads(train.stdout)
    assert manifest["training"]["backend"] == "jax"
    assert manifest["training"]["device_kind"] == "cpu"
    assert manifest["config"]["augment"] == "crop,erase"
    assert "keras" in manifest["tool_versions"] and "jax" in manifest["tool_versions"]
    assert len(manifest["history"]) == 3
    assert manifest["metrics"]["accuracy"] > 0.5  # 3 epochs of ResNet-8 on digits: ~0.8-0.9
    # counted like the tf_keras trainer's (8x8x1 input: 32x32x3 ResNet-8's 12.5 M shrink ~16x)
    assert 0.5e6 < manifest["metrics"]["macs"] < 1.0e6
    assert "import tensorflow" not in train.stderr and "oneDNN" not in train.stderr
    routes = {}
    for route, extra in (("keras3-export", ("onnx",)), ("keras3-rebuilt", ())):
        folder = tmp_path / route
        flags = ("--no-keras3-export",) if route == "keras3-rebuilt" else ()
        formats = ",".join(("tflite-fp32", "tflite-int8", *extra))
        export = edgesmith(
            "export", "--from", str(out), "--format", formats, "--out", str(folder), "--json",
            *flags,
        )  # fmt: skip
        assert export.returncode == 0, export.stderr[-3000:]
        records = {r["technique"]: r for r in json.loads(export.stdout)}
        assert {r["metrics"]["parity"] for r in records.values()} == {"pass"}
        assert records["tflite-int8"]["config"]["converted_from"] == route
        if "onnx" in records:  # ONNX always starts from the tf_keras rebuild
            assert records["onnx"]["config"]["converted_from"] == "keras3-rebuilt"
        routes[route] = folder
    # Keras 3's own export and the tf_keras rebuild: the same numbers, to the last bit
    from edgesmith.core.datasets import load_dataset
    from edgesmith.runtime import load

    pixels = load_dataset("digits").x_eval
    for fmt in ("tflite-fp32", "tflite-int8"):
        ours, rebuilt = (load(routes[r] / fmt).predict(pixels) for r in routes)
        assert ours.tobytes() == rebuilt.tobytes(), fmt


@pytest.mark.slow
def test_a_teacher_distils_with_ema_and_a_left_partial_needs_resume(tmp_path):
    teacher = tmp_path / "teacher"
    first = edgesmith(
        "train", "--backend", "jax", "--data", "digits", "--model", "seed_cnn", "--epochs", "3",
        "--accelerator", "cpu", "--out", str(teacher), "--quiet",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads((teacher / "manifest.json").read_text())["metrics"]["accuracy"] > 0.5
    student = tmp_path / "student"
    args = (
        "train", "--backend", "jax", "--data", "digits", "--model", "seed_cnn", "--epochs", "3",
        "--accelerator", "cpu", "--teacher", str(teacher), "--alpha", "0.5",
        "--ema", "0.5", "--out", str(student),
    )  # fmt: skip
    partial = Path(str(student) + ".partial")
    partial.mkdir()  # a folder of that name edgesmith did not make: refused, never resumed
    foreign = edgesmith(*args)
    assert foreign.returncode == 2 and "did not create it as staging" in foreign.stderr
    mark_staging_dir(partial, student, purpose="artifact")  # an interrupted run's leftover
    refused = edgesmith(*args)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    shutil.rmtree(partial)
    done = edgesmith(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((student / "manifest.json").read_text())
    assert manifest["config"]["teacher"] == str(teacher)
    assert manifest["config"]["ema"] == 0.5 and manifest["config"]["alpha"] == 0.5
    assert manifest["metrics"]["accuracy"] > 0.3  # 3 epochs from a ~0.7 teacher: ~0.5


_INTERRUPTED_THEN_RESUMED = """
import json, sys
from edgesmith.train.config import TrainConfig
from edgesmith.train.keras3_trainer import train_keras3
from edgesmith.core.progress import silent

out = sys.argv[1]
config = TrainConfig(backend="jax", data="digits", model="seed_cnn", epochs=3, accelerator="cpu")

class Stop(Exception):
    pass

def stop_after_first_epoch(line):
    if line.startswith("epoch   1/"):
        raise Stop

try:
    train_keras3(config, out, report=stop_after_first_epoch)
except Stop:
    pass
resumed = train_keras3(config, out, resume=True, report=silent)
whole = train_keras3(config, out + "-whole", report=silent)
print(json.dumps([resumed.manifest.history, whole.manifest.history]))
"""


@pytest.mark.slow
def test_an_interrupted_run_resumes_on_the_same_schedule(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_THEN_RESUMED, str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    resumed, whole = json.loads(result.stdout.strip().splitlines()[-1])
    assert [h["epoch"] for h in resumed] == [1, 2, 3]
    # the optimizer step (and so the learning rate schedule) continued where it stopped
    for a, b in zip(resumed, whole, strict=True):
        assert a["learning_rate"] == pytest.approx(b["learning_rate"], rel=1e-6, abs=1e-9)
    for key in ("loss", "eval_accuracy"):  # epoch 1 is kept from the interrupted process
        assert resumed[0][key] == pytest.approx(whole[0][key], rel=1e-4)
    # Not asserted: equal final accuracy. The resumed run is not bitwise the uninterrupted one
    # (seed_cnn on digits swings by 10 points from small differences; see the trainer's notes).
    assert resumed[-1]["eval_accuracy"] > 0.3
