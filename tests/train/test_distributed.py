"""Multi-worker training on loopback, mixed precision and XLA: the GPU-era paths, run on CPU."""

import re
import subprocess
import sys

import numpy as np
import pytest

from edgesmith.core.artifacts import read_artifact
from edgesmith.core.progress import silent
from edgesmith.tfkeras.model_io import load_keras_model
from edgesmith.train import TrainConfig, train
from edgesmith.train.multiworker import launch_local

DATA = "synthetic?n=128&shape=8x8"


@pytest.mark.slow
def test_two_workers_on_loopback_finish_with_identical_weights(tmp_path):
    results = launch_local(
        2,
        [
            "--data",
            DATA,
            "--model",
            "resnet8",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--out",
            str(tmp_path / "mw"),
        ],
        timeout=600,
    )
    assert [r.returncode for r in results] == [0, 0], results[0].stderr[-2000:]
    digests = [re.search(r"weights sha256 ([0-9a-f]{64})", r.stderr).group(1) for r in results]
    assert digests[0] == digests[1]
    manifest = read_artifact(tmp_path / "mw").manifest  # the chief's artifact
    assert manifest.config["strategy"] == "multiworker"
    assert "worker 1 of 2" in results[1].stderr


@pytest.mark.parametrize(
    ("precision", "xla", "augment_on"),
    [
        ("mixed_bfloat16", False, "host"),
        ("mixed_bfloat16", False, "device"),  # augmentation inside the autocast wrapper
        ("float32", True, "device"),  # augmentation compiled by XLA with the step
    ],
)
@pytest.mark.slow
def test_mixed_precision_and_xla_train_on_cpu_and_save_float32(
    tmp_path, precision, xla, augment_on
):
    if xla:
        # XLA's CPU JIT runs in a fresh interpreter: in a process where LiteRT's CompiledModel
        # (test_compiled.py) was loaded first, TensorFlow 2.21's XLA step segfaults (both ship
        # their own copy of the compiler runtime); a user's training never shares that process
        argv = [sys.executable, "-m", "edgesmith", "train", "--data", DATA, "--model", "resnet8",
                "--epochs", "1", "--batch-size", "32", "--precision", precision, "--xla",
                "--augment-on", augment_on, "--out", str(tmp_path / "run")]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        artifact = read_artifact(tmp_path / "run")
    else:
        config = TrainConfig(
            data=DATA,
            model="resnet8",
            epochs=1,
            batch_size=32,
            precision=precision,
            xla=xla,
            augment_on=augment_on,
        )
        artifact = train(config, tmp_path / "run", report=silent)
    model, _ = load_keras_model(artifact.model_path)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    out = model(np.zeros((2, 8, 8, 1), np.float32)).numpy()
    assert out.dtype == np.float32 and np.allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert artifact.manifest.config["precision"] == precision
    assert artifact.manifest.input_pipeline.augment_on == augment_on


def test_bad_precision_is_refused_before_work():
    from edgesmith.core.errors import EdgesmithError

    with pytest.raises(EdgesmithError, match="precision must be one of float32"):
        TrainConfig(precision="fp8")
