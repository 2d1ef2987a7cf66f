"""bench/gpu_check.sh runs end to end on a CPU-only machine in its dry-run mode."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_run_runs_end_to_end_on_the_best_provider_present(tmp_path):
    edgesmith = shutil.which("edgesmith", path=str(Path(sys.executable).parent))
    assert edgesmith, "the edgesmith command is not installed beside this Python"
    env = {**os.environ, "EDGESMITH": edgesmith}
    result = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path / "g")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "gpu_check: done" in output
    gpu = json.loads((tmp_path / "g" / "bench-gpu.json").read_text())
    assert gpu["results"][0]["provider"] in ("cpu", "cuda", "tensorrt")
    assert gpu["settings"]["provider"] == "auto"


def test_gpu_check_refuses_a_missing_data_dir(tmp_path):
    result = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "cifar10.npz" in result.stderr
