"""End to end: the fixture compiled with TFLM + CMSIS-NN, run on an emulated Cortex-M55."""

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
def test_fixture_firmware_agrees_with_litert_and_counts_deterministically(tmp_path):
    from edgesmith.export.firmware.pipeline import firmware_report

    rng = np.random.default_rng(0)
    inputs = rng.integers(-128, 128, size=(20, 8, 8, 1), dtype=np.int8)
    report = firmware_report(FIXTURE, "cortex-m55", inputs, tmp_path)
    assert report.num_images == 20
    assert report.agreement_vs_litert >= 0.99
    assert report.instructions_deterministic
    assert report.instructions_per_inference > 0
    assert 0 < report.arena_used_bytes <= report.arena_bytes
    assert report.flash_kb > 0 and report.ram_kb * 1024 >= report.arena_bytes
