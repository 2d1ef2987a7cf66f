"""End to end: the fixture compiled with TFLM + CMSIS-NN, run on emulated Cortex-M55 and -M4 cores.

Each core's TFLM library is built once (about 12 minutes on two cores) and cached; the M4 run
covers the Armv7E-M boards (mps2), the M55 the Armv8.1-M one, and the export tests use the M55.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

FIXTURE = Path(__file__).parents[1] / "runtime" / "fixtures" / "int8.tflite"

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    for tool in ("arm-none-eabi-g++", "arm-none-eabi-size", "qemu-system-arm", "make"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.environ.get("EDGESMITH_TFLM_SOURCES"):
        return "EDGESMITH_TFLM_SOURCES is not set (the pinned TFLM source archives)"
    return None


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
@pytest.mark.parametrize(
    ("target", "machine"), [("cortex-m55", "mps3-an547"), ("cortex-m4", "mps2-an386")]
)
def test_fixture_firmware_agrees_with_litert_and_counts_deterministically(
    tmp_path, target, machine
):
    from edgesmith.export.firmware.pipeline import firmware_report

    rng = np.random.default_rng(0)
    inputs = rng.integers(-128, 128, size=(20, 8, 8, 1), dtype=np.int8)
    report = firmware_report(FIXTURE, target, inputs, tmp_path)
    assert report.num_images == 20 and report.machine == machine
    assert report.agreement_vs_litert >= 0.99
    assert report.instructions_deterministic
    assert report.instructions_per_inference > 0
    assert 0 < report.arena_used_bytes <= report.arena_bytes
    assert report.flash_kb > 0 and report.ram_kb * 1024 >= report.arena_bytes


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_handoff_main_builds_and_runs_one_inference(tmp_path):
    """The one-inference main.cc a firmware engineer copies compiles, links and runs."""
    import subprocess

    from edgesmith.export.firmware import build, handoff, project, qemu, sources
    from edgesmith.export.firmware.pipeline import firmware_report

    board = project.board_for("cortex-m55")
    inputs = np.zeros((1, 8, 8, 1), dtype=np.int8)
    report = firmware_report(FIXTURE, "cortex-m55", inputs, tmp_path / "work")
    tflm = sources.prepare(None)
    library = build.library_path(tflm, board)
    files = handoff.write_handoff(
        tmp_path / "work" / "project", tmp_path / "art", board=board, tflm=tflm,
        library=library, arena_bytes=report.arena_bytes,
    )  # fmt: skip
    assert "firmware/main.cc" in files and "firmware/firmware.elf" in files
    elf = build.link_firmware(tmp_path / "art" / "firmware", tflm, board, library)
    run = subprocess.run(
        qemu.qemu_command(board, elf), capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "class=" in run.stdout


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_export_target_cortex_m55_records_the_firmware(digits_artifact, tmp_path):
    from edgesmith.core.progress import silent
    from edgesmith.export import export

    (artifact,) = export(
        digits_artifact, "tflite-int8", tmp_path / "out", report=silent, target="cortex-m55",
        firmware_images=20,
    )  # fmt: skip
    firmware = artifact.manifest.target.firmware
    assert firmware.verdict == "pass" and firmware.num_images == 20
    assert firmware.agreement >= 0.5 and firmware.instructions_deterministic
    assert firmware.flash_kb > artifact.metrics.size_bytes / 1024
    assert firmware.arena_used_bytes <= firmware.arena_bytes <= firmware.ram_kb * 1024
    assert set(firmware.files) <= set(artifact.files)
    assert (artifact.path / "firmware" / "firmware.elf").stat().st_size > 0
