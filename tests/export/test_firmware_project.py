"""Fast tests of the generated firmware sources and the error lines (no toolchain needed)."""

from __future__ import annotations

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
    with pytest.raises(EdgesmithError, match="'cortex-m99'.*cortex-m55"):
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
