"""Run a firmware in ``qemu-system-arm`` with semihosting and read back what it computed.

``-icount shift=0`` makes QEMU retire one instruction per virtual nanosecond, so SysTick (the
processor clock, SystemCoreClock Hz) advances one tick per 1e9 / SystemCoreClock instructions
and the counts are identical on every run. The firmware times a loop of exactly 10 M
instructions first; its tick count is the calibration, checked here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesmith.core.errors import EdgesmithError

from .project import Board

CALIBRATION_INSTRUCTIONS = 10_000_000


@dataclass(frozen=True)
class FirmwareRun:
    """What one emulator run produced."""

    outputs: np.ndarray  # (N, output_bytes) int8
    arena_used_bytes: int
    instructions_per_inference: list[int]
    instructions_per_tick: float
    wall_seconds: float


def qemu_command(board: Board, elf: Path) -> list[str]:
    """The emulator's command line (the one the vendor README saw working)."""
    return [
        qemu_command_base(),
        "-M",
        board.machine,
        "-nographic",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        "shift=0",
        "-kernel",
        str(elf),
    ]


def qemu_version() -> str:
    """``qemu-system-arm --version``'s first line (the emulator the counts come from)."""
    command = qemu_command_base()
    out = subprocess.run([command, "--version"], capture_output=True, text=True, check=False)
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if lines else "qemu-system-arm (version unknown)"


def qemu_command_base() -> str:
    """The emulator's path, or one line naming the Debian package that provides it."""
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        raise EdgesmithError(
            "qemu-system-arm not found on PATH; install the Debian package qemu-system-arm"
        )
    return qemu


def parse_output(text: str, *, core_clock_hz: int) -> tuple[int, list[int], float]:
    """(arena_used_bytes, instructions per inference, instructions per tick) from stdout.

    Raises:
        EdgesmithError: the firmware printed an error or not the lines expected.
    """
    error = re.search(r"^error=(.*)$", text, re.M)
    if error:
        raise EdgesmithError(f"the firmware stopped: {error.group(1).strip()}")
    arena = re.search(r"^arena_used_bytes=(\d+)", text, re.M)
    calib = re.search(r"^calibration_ticks_per_10M_instructions=(\d+)", text, re.M)
    if arena is None or calib is None:
        raise EdgesmithError(f"the firmware's output lacks its report lines: {text[-300:]!r}")
    per_tick = CALIBRATION_INSTRUCTIONS / int(calib.group(1))
    expected = 1e9 / core_clock_hz
    if abs(per_tick - expected) > 0.01 * expected:
        raise EdgesmithError(
            f"SysTick calibration gave {per_tick:.2f} instructions per tick; expected "
            f"{expected:.2f} (is -icount shift=0 in effect?)"
        )
    ticks = [int(t) for t in re.findall(r"^inference=\d+ ticks=(\d+)", text, re.M)]
    return int(arena.group(1)), [round(t * expected) for t in ticks], expected


def run_firmware(
    board: Board, elf: Path, inputs: np.ndarray, workdir: Path, *, timeout_s: float = 3600
) -> FirmwareRun:
    """Write ``inputs`` (N, input_bytes int8) to input.bin, run the ELF, read output.bin."""
    workdir.mkdir(parents=True, exist_ok=True)
    inputs = np.ascontiguousarray(inputs, dtype=np.int8)
    (workdir / "input.bin").write_bytes(inputs.tobytes())
    out_file = workdir / "output.bin"
    out_file.unlink(missing_ok=True)
    start = time.monotonic()
    try:
        run = subprocess.run(
            qemu_command(board, elf),
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EdgesmithError(f"the firmware did not finish within {timeout_s:.0f} s") from None
    wall = time.monotonic() - start
    (workdir / "qemu.log").write_text(run.stdout + run.stderr)
    arena, instructions, per_tick = parse_output(run.stdout, core_clock_hz=board.core_clock_hz)
    if run.returncode != 0:
        raise EdgesmithError(
            f"the firmware exited with status {run.returncode}: {run.stdout[-200:]!r}"
        )
    n = len(inputs)
    raw = np.frombuffer(out_file.read_bytes(), dtype=np.int8)
    if len(instructions) != n or raw.size % max(n, 1) or raw.size == 0:
        raise EdgesmithError(f"the firmware ran {len(instructions)} of {n} inferences")
    return FirmwareRun(raw.reshape(n, -1), arena, instructions, per_tick, wall)
