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


# bench/gpu_train.py: runs from the source tree without edgesmith installed (the bootstrap).
_WITHOUT_INSTALL = """
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
for name in [m for m in sys.modules if m.startswith("edgesmith")]:
    del sys.modules[name]
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.slow
def test_gpu_train_dry_run_bootstraps_the_source_tree_and_reports(tmp_path):
    pytest.importorskip("jax")
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        "# a teacher and one distilled student\n"
        + json.dumps(
            {
                "defaults": {"backend": "jax", "model": "seed_cnn"},
                "runs": [
                    {"name": "teacher"},
                    {"name": "student", "teacher": "@teacher", "ema": 0.5, "augment": "crop,erase"},
                ],
            }
        )
    )
    out, report = tmp_path / "runs", tmp_path / "gpu_train.json"
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_INSTALL, str(ROOT / "bench" / "gpu_train.py"),
         "--dry-run", "--model", "seed_cnn", "--also", str(recipe), "--out", str(out),
         "--json-out", str(report), "--tar-out", str(tmp_path / "runs.tar.gz")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "time to 85%" in output and "img/s after compile" in output
    data = json.loads(report.read_text())
    main = data["main"]
    assert main["epochs"] == 2 and main["training"]["backend"] == "jax"
    assert main["images_per_second_after_compile"] > 0
    assert main["time_to_target_seconds"] is None or main["time_to_target_seconds"] > 0
    assert [r["name"] for r in data["also"]] == ["teacher", "student"]
    assert data["also"][1]["config"]["ema"] == 0.5
    for run in ("main-seed_cnn", "tiny/teacher", "tiny/student"):
        assert (out / run / "model.keras").is_file() and (out / run / "manifest.json").is_file()
    assert (tmp_path / "runs.tar.gz").stat().st_size > 10_000


def test_gpu_train_needs_data_unless_dry_run():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_train.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--data is required" in result.stderr
