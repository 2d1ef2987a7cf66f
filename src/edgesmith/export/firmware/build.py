"""Compile TFLM + CMSIS-NN for one core (cached) and link one model's firmware.

The library is TFLM's own ``microlite`` target (its Makefile, its flags), built once per
(TFLM commit, core) in the cache: make's own dependency tracking skips it on a second export.
The firmware is the generated sources plus the model's C array, linked with newlib's
semihosting (rdimon) so the emulator's host files are its input and output.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edgesmith.core.errors import EdgesmithError

from .project import Board

TOOLS = {
    "arm-none-eabi-g++": "gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "arm-none-eabi-size": "binutils-arm-none-eabi",
    "make": "make",
    "patch": "patch",
}
MAKEFILE = "tensorflow/lite/micro/tools/make/Makefile"
DFP = "tensorflow/lite/micro/tools/make/downloads/cmsis/Cortex_DFP"


def require_tool(name: str) -> str:
    """The tool's path, or one line naming the Debian package that provides it."""
    path = shutil.which(name)
    if path is None:
        package = TOOLS.get(name, name)
        raise EdgesmithError(f"{name} not found on PATH; install the Debian package(s) {package}")
    return path


def make_args(board: Board, toolchain_root: str | None = None) -> list[str]:
    """TFLM's make variables for a CMSIS-NN build of this core with the system toolchain.

    ``toolchain_root``: the folder of ``arm-none-eabi-gcc`` (default: the one on this PATH,
    which must be there); the hand-off text passes a shell expression that finds it anywhere.
    """
    gcc = toolchain_root or Path(require_tool("arm-none-eabi-gcc")).parent
    return [
        "TARGET=cortex_m_generic",
        f"TARGET_ARCH={board.tflm_arch}",
        "OPTIMIZED_KERNEL_DIR=cmsis_nn",
        f"TARGET_TOOLCHAIN_ROOT={gcc}/",
        "BUILD_TYPE=release",
    ]


def library_path(tflm: Path, board: Board) -> Path:
    """Where TFLM's Makefile puts ``libtensorflow-microlite.a`` for this core."""
    return (
        tflm
        / "gen"
        / f"cortex_m_generic_{board.tflm_arch}_release_cmsis_nn_gcc"
        / "lib"
        / ("libtensorflow-microlite.a")
    )


def build_library(tflm: Path, board: Board, *, jobs: int = 2) -> tuple[Path, float, bool]:
    """Build (or reuse) TFLM's library for the core; return (path, seconds, cached).

    make runs with the Python that runs edgesmith first on PATH (TFLM's makefiles run a
    generator script that imports numpy and Pillow). Progress goes to stderr every 20 objects.
    """
    lib = library_path(tflm, board)
    if lib.exists():
        return lib, 0.0, True
    require_tool("make")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = ["make", "-f", MAKEFILE, *make_args(board), f"-j{jobs}", "microlite"]
    start = time.monotonic()
    objects = lib.parent.parent / "obj"
    log = lib.parent.parent / "make.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with (
        log.open("w") as sink,
        subprocess.Popen(command, cwd=tflm, env=env, stdout=sink, stderr=subprocess.STDOUT) as proc,
    ):
        while proc.poll() is None:
            time.sleep(1)
            elapsed = time.monotonic() - start
            if int(elapsed) % 30 == 0:
                count = sum(1 for _ in objects.rglob("*.o")) if objects.exists() else 0
                print(
                    f"edgesmith: building TFLM + CMSIS-NN for {board.cpu}: {count} objects, "
                    f"{elapsed:.0f} s",
                    file=sys.stderr,
                )
    log_lines = log.read_text(errors="replace").splitlines(keepends=True)
    if proc.returncode != 0 or not lib.exists():
        tail = "".join(log_lines[-5:]).strip().replace("\n", " | ")[-400:]
        raise EdgesmithError(
            f"building TFLM for {board.cpu} failed (make exit {proc.returncode}): {tail}"
        )
    return lib, time.monotonic() - start, False


def include_dirs(tflm: Path, board: Board) -> list[Path]:
    """The include folders a TFLM application needs (those of TFLM's own examples)."""
    downloads = tflm / "tensorflow/lite/micro/tools/make/downloads"
    return [
        tflm,
        downloads / "flatbuffers/include",
        downloads / "gemmlowp",
        downloads / "ruy",
        downloads / "cmsis/CMSIS/Core/Include",
        downloads / f"cmsis/Cortex_DFP/Device/{board.device}/Include",
    ]


def firmware_flags(board: Board) -> list[str]:
    """Compiler flags of the application files (TFLM's defines for a static-memory build)."""
    return [
        *board.cflags,
        f"-D{board.device}",
        "-DTF_LITE_STATIC_MEMORY",
        "-DCMSIS_NN",
        "-DTF_LITE_STRIP_ERROR_STRINGS",  # as TFLM's release library is built
        "-DNDEBUG",
        "-O2",
        "-ffunction-sections",
        "-fdata-sections",
    ]


CXX_FLAGS = (
    "-std=c++17",
    "-fno-rtti",
    "-fno-exceptions",
    "-fno-threadsafe-statics",
    "-fno-use-cxa-atexit",
)


def link_flags(board: Board, linker_script: Path) -> list[str]:
    """The link step's flags: newlib with semihosting (rdimon), no crt0, unused code dropped."""
    return [
        *board.cflags,
        "--specs=rdimon.specs",
        "-nostartfiles",
        "-Wl,--gc-sections",
        f"-T{linker_script}",
    ]


def _run(command: list[str], cwd: Path, what: str) -> None:
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        message = (run.stderr or run.stdout).strip().splitlines()
        raise EdgesmithError(f"{what} failed: {message[-1] if message else 'no output'}")


def link_firmware(project: Path, tflm: Path, board: Board, library: Path) -> Path:
    """Compile the project's sources and link ``firmware.elf``; return its path."""
    gxx = require_tool("arm-none-eabi-g++")
    gcc = require_tool("arm-none-eabi-gcc")
    dfp = tflm / DFP / "Device" / board.device
    includes = [f"-I{p}" for p in [project, *include_dirs(tflm, board)]]
    flags = firmware_flags(board)
    objects = []
    c_sources = [
        project / "start.c",
        dfp / f"Source/startup_{board.device}.c",
        dfp / f"Source/system_{board.device}.c",
    ]
    for source in c_sources:
        obj = project / f"{source.stem}.o"
        _run(
            [gcc, *flags, "-std=c11", *includes, "-c", str(source), "-o", str(obj)],
            project,
            f"compiling {source.name}",
        )
        objects.append(obj)
    for source in (project / "main.cc", project / "model_data.cc"):
        obj = project / f"{source.stem}.o"
        _run(
            [
                gxx,
                *flags,
                *CXX_FLAGS,
                *includes,
                "-c",
                str(source),
                "-o",
                str(obj),
            ],
            project,
            f"compiling {source.name}",
        )
        objects.append(obj)
    elf = project / "firmware.elf"
    _run(
        [
            gxx,
            *link_flags(board, project / "firmware.ld"),
            *map(str, objects),
            str(library),
            "-lm",
            f"-Wl,-Map={project / 'firmware.map'}",
            "-o",
            str(elf),
        ],
        project,
        "linking firmware.elf",
    )
    return elf


@dataclass(frozen=True)
class ElfSizes:
    """Section totals of the ELF: flash = text + rodata (+ data's load image), RAM = data + bss."""

    flash_bytes: int
    ram_bytes: int
    sections: dict[str, int]


def elf_sizes(elf: Path) -> ElfSizes:
    """Section sizes from ``arm-none-eabi-size -A``, so budgets judge what the image holds.

    Flash = the allocated read-only sections + .data's initial values; RAM = .data + .bss (the
    arena is a static array, so in .bss), not counting the stack and heap the linker reserves.
    """
    size = require_tool("arm-none-eabi-size")
    out = subprocess.run([size, "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sections: dict[str, int] = {}
    for line in out.splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+(\d+)", line)
        if m:
            sections[m.group(1)] = int(m.group(2))
    ram_names = (".data", ".bss")
    skip = (".heap", ".stack", ".stackseal", ".comment", ".ARM.attributes")
    flash = sum(
        v
        for k, v in sections.items()
        if k not in ram_names and not k.startswith(skip) and not k.startswith(".debug")
    )
    flash += sections.get(".data", 0)
    ram = sum(sections.get(k, 0) for k in ram_names)
    return ElfSizes(flash_bytes=flash, ram_bytes=ram, sections=sections)
