"""Fast tests of the generated firmware sources and the error lines (no toolchain needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.export.firmware import build, project, qemu, sources
from edgesmith.export.ops import tflite_op_report

FIXTURE = Path(__file__).parents[1] / "runtime" / "fixtures" / "int8.tflite"

TEMPLATE = """/* a Cortex_DFP-like template */
__ROM_BASE = 0x00000000;
__ROM_SIZE = 0x00040000;
__RAM_BASE = 0x20000000;
__RAM_SIZE = 0x00020000;
__STACK_SIZE = 0x00000400;
__HEAP_SIZE  = 0x00000C00;
MEMORY { }
"""


def test_op_resolver_holds_exactly_the_fixture_ops():
    ops = tflite_op_report(FIXTURE.read_bytes())["operators"]
    header = project.op_resolver_header(ops)
    assert "MicroMutableOpResolver<kNumOps>" in header
    assert "constexpr int kNumOps = 5;" in header
    for method in ("AddConv2D", "AddFullyConnected", "AddMaxPool2D", "AddMean", "AddSoftmax"):
        assert f"r.{method}()" in header
    assert header.count("r.Add") == 5


def test_op_resolver_names_an_unknown_op():
    with pytest.raises(EdgesmithError, match="CUSTOM_THING"):
        project.op_resolver_header({"CONV_2D": 1, "CUSTOM_THING": 1})


def test_linker_script_takes_the_board_memory_map():
    board = project.board_for("cortex-m55")
    script = project.linker_script(TEMPLATE, board)
    assert "__ROM_SIZE = 0x00080000;" in script
    assert "__RAM_BASE = 0x60000000;" in script
    assert f"__STACK_SIZE = 0x{project.STACK_SIZE:08X};" in script
    assert "MEMORY { }" in script


def test_linker_script_refuses_a_template_without_a_symbol():
    with pytest.raises(EdgesmithError, match="__HEAP_SIZE"):
        project.linker_script(
            TEMPLATE.replace("__HEAP_SIZE", "__OTHER"), project.BOARDS["cortex-m55"]
        )


def test_unknown_target_is_one_line():
    with pytest.raises(EdgesmithError, match="'cortex-m99'.*cortex-m4, cortex-m7, cortex-m55"):
        project.board_for("cortex-m99")


def test_main_cc_sizes_and_semihosting_files():
    text = project.main_cc(arena_bytes=4096, input_bytes=64, output_bytes=10, device="ARMCM55")
    assert "kArenaBytes = 4096" in text and "kInputBytes = 64" in text
    assert '#include "ARMCM55.h"' in text
    assert 'fopen("input.bin", "rb")' in text and "arena_used_bytes()" in text
    with pytest.raises(EdgesmithError):
        project.main_cc(arena_bytes=0, input_bytes=64, output_bytes=10, device="ARMCM55")


def test_missing_sources_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.delenv(sources.SOURCES_ENV, raising=False)
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(EdgesmithError, match="--tflm-sources DIR or set EDGESMITH_TFLM_SOURCES"):
        sources.prepare(None)
    with pytest.raises(EdgesmithError, match="not a folder"):
        sources.prepare(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgesmithError, match="tflite-micro-"):
        sources.prepare(tmp_path / "empty")


def test_archive_with_the_wrong_commit_is_refused(monkeypatch, tmp_path):
    import io
    import tarfile

    folder = tmp_path / "src"
    folder.mkdir()
    with tarfile.open(
        folder / "tflite-micro-deadbeef.tar.gz",
        "w:gz",
        format=tarfile.PAX_FORMAT,
        pax_headers={"comment": "deadbeef" * 5},
    ) as tar:
        info = tarfile.TarInfo("tflite-micro/README.md")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(
        EdgesmithError, match="records commit deadbeef.*expected tensorflow/tflite-micro"
    ):
        sources.prepare(folder)


def test_missing_toolchain_names_the_debian_package(monkeypatch):
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    with pytest.raises(EdgesmithError, match="install the Debian package.*gcc-arm-none-eabi"):
        build.require_tool("arm-none-eabi-g++")
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None)
    with pytest.raises(EdgesmithError, match="qemu-system-arm"):
        qemu.qemu_command(project.BOARDS["cortex-m55"], Path("fw.elf"))


def test_parse_output_turns_ticks_into_instructions():
    text = (
        "calibration_ticks_per_10M_instructions=250000\ncore_clock_hz=25000000\n"
        "arena_used_bytes=2928\ninference=0 ticks=1000\ninference=1 ticks=1000\ninferences=2\n"
    )
    arena, instructions, per_tick = qemu.parse_output(text, core_clock_hz=25_000_000)
    assert arena == 2928 and per_tick == 40.0 and instructions == [40000, 40000]


def test_parse_output_refuses_a_wrong_calibration_and_firmware_errors():
    bad = "calibration_ticks_per_10M_instructions=100\narena_used_bytes=1\n"
    with pytest.raises(EdgesmithError, match="icount"):
        qemu.parse_output(bad, core_clock_hz=25_000_000)
    with pytest.raises(EdgesmithError, match="allocate_tensors"):
        qemu.parse_output("error=allocate_tensors\n", core_clock_hz=25_000_000)


# QEMU 7.2's RAM regions of each board (``info mtree -f``): base -> size.
QEMU_RAM = {
    "mps2-an386": {0x00000000: 0x00400000, 0x20000000: 0x00400000, 0x21000000: 0x01000000},
    "mps2-an500": {0x00000000: 0x00400000, 0x20000000: 0x00400000, 0x60000000: 0x01000000},
    "mps3-an547": {0x00000000: 0x00080000, 0x60000000: 0x01000000},
}


@pytest.mark.parametrize("target", sorted(project.BOARDS))
def test_board_code_and_data_lie_in_the_emulated_ram(target):
    board = project.board_for(target)
    regions = QEMU_RAM[board.machine]
    for base, size in ((board.rom_base, board.rom_size), (board.ram_base, board.ram_size)):
        assert base in regions and size <= regions[base], f"{target}: 0x{base:08X}"
    assert board.rom_base != board.ram_base
    assert project.STACK_SIZE + project.HEAP_SIZE + (1 << 20) <= board.ram_size  # first arena


@pytest.mark.parametrize(
    ("target", "machine", "device", "rom_size", "ram_base"),
    [
        ("cortex-m4", "mps2-an386", "ARMCM4", "0x00400000", "0x20000000"),
        ("cortex-m7", "mps2-an500", "ARMCM7", "0x00400000", "0x20000000"),
    ],
)
def test_new_cores_link_into_their_boards_map(target, machine, device, rom_size, ram_base):
    board = project.board_for(target)
    assert (board.machine, board.device, board.core_clock_hz) == (machine, device, 25_000_000)
    script = project.linker_script(TEMPLATE, board)
    assert f"__ROM_SIZE = {rom_size};" in script and f"__RAM_BASE = {ram_base};" in script
    text = project.main_cc(arena_bytes=64, input_bytes=4, output_bytes=2, device=board.device)
    assert f'#include "{device}.h"' in text


@pytest.mark.parametrize(
    ("target", "arch", "fpu"),
    [
        ("cortex-m4", "cortex-m4+fp", "-mfpu=fpv4-sp-d16"),
        ("cortex-m7", "cortex-m7+fp", "-mfpu=fpv5-d16"),
        ("cortex-m55", "cortex-m55", None),
    ],
)
def test_library_and_application_share_the_cpu_and_float_abi(target, arch, fpu):
    board = project.board_for(target)
    args = build.make_args(board, "/usr/bin")
    assert f"TARGET_ARCH={arch}" in args
    assert (
        build.library_path(Path("t"), board).parts[2]
        == f"cortex_m_generic_{arch}_release_cmsis_nn_gcc"
    )
    flags = build.firmware_flags(board)
    assert (
        f"-mcpu={target}" in flags and "-mfloat-abi=hard" in flags and f"-D{board.device}" in flags
    )
    assert (fpu in flags) if fpu else not any(f.startswith("-mfpu") for f in flags)
    assert build.link_flags(board, Path("fw.ld"))[: len(board.cflags)] == list(board.cflags)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
@pytest.mark.parametrize("target", sorted(project.BOARDS))
def test_application_fpu_is_the_one_tflm_builds_the_library_with(target):
    """TFLM compiles ``<core>+fp`` with ``-mfpu=auto``; the application's explicit FPU must be
    the same one, or the two halves of the firmware disagree on the hard-float ABI."""
    board = project.board_for(target)

    def macros(flags: list[str]) -> set[str]:
        run = subprocess.run(
            ["arm-none-eabi-gcc", *flags, "-dM", "-E", "-"],
            input="", capture_output=True, text=True, check=True,
        )  # fmt: skip
        keys = ("__ARM_FP", "__ARM_FEATURE_MVE", "__ARM_FEATURE_DSP", "__ARM_ARCH")
        return {line for line in run.stdout.splitlines() if line.split()[1].startswith(keys)}

    library = macros([f"-mcpu={board.cpu}", "-mfpu=auto", "-mthumb", "-mfloat-abi=hard"])
    assert macros(list(board.cflags)) == library and library
