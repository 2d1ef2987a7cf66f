"""Export --target cortex-m55 without a toolchain: validation, the verdict rule, the records.

The firmware run itself is replaced by a recorded report where a test needs one (the real run is
``test_firmware_e2e.py``); everything around it (preflight lines, options, the manifest record,
the budgets and the summary line) is the code the export runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgesmith.core.errors import CheckFailed, EdgesmithError
from edgesmith.core.manifest import Firmware, Target
from edgesmith.core.profiles import FIRMWARE_TARGETS, Budgets, load_profile
from edgesmith.export.firmware import check, handoff, project, sources
from edgesmith.export.firmware.pipeline import FirmwareReport
from edgesmith.export.options import MAX_FIRMWARE_IMAGES, ExportOptions
from edgesmith.export.parity import accuracy_drop_test

FIXTURE = Path(__file__).parents[1] / "runtime" / "fixtures" / "int8.tflite"


def _report(**changes) -> FirmwareReport:
    """A report with the figures of MLCommons' ResNet-8 on 200 CIFAR-10 images (measured)."""
    values = dict(
        target="cortex-m55",
        machine="mps3-an547",
        num_images=200,
        agreement_vs_litert=0.97,
        accuracy=0.88,
        litert_accuracy=0.88,
        accuracy_test=accuracy_drop_test([True] * 176 + [False] * 24, [True] * 176 + [False] * 24),
        flash_kb=194.7,
        ram_kb=57.9,
        arena_bytes=56_064,
        arena_used_bytes=55_028,
        instructions_per_inference=4_913_781,
        instructions_deterministic=True,
        library_build_seconds=0.0,
        library_cached=True,
        emulation_seconds=20.0,
        emulation_seconds_per_image=0.1,
        versions={"toolchain": "arm-none-eabi-gcc 12.2.1", "qemu": "QEMU emulator version 7.2"},
    )
    values.update(changes)
    return FirmwareReport(**values)


def test_firmware_targets_are_the_boards_that_exist():
    assert FIRMWARE_TARGETS == tuple(project.BOARDS)


def test_missing_tools_are_one_line_naming_the_debian_packages(monkeypatch):
    monkeypatch.setattr(check.shutil, "which", lambda name: None)
    with pytest.raises(EdgesmithError) as info:
        check.check_available("cortex-m55")
    message = str(info.value)
    assert "\n" not in message and "apt-get install" in message
    for package in ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm"):
        assert package in message


def test_missing_tflm_sources_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setattr(check.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))  # nothing unpacked there
    monkeypatch.delenv(sources.SOURCES_ENV, raising=False)
    with pytest.raises(EdgesmithError, match="EDGESMITH_TFLM_SOURCES"):
        check.check_available("cortex-m55")
    monkeypatch.setenv(sources.SOURCES_ENV, str(tmp_path))
    check.check_available("cortex-m55")  # a folder is given: checked when unpacked


def test_firmware_options_are_range_checked_and_need_their_target():
    assert ExportOptions(target="cortex-m55").firmware_images == 100
    with pytest.raises(EdgesmithError, match="firmware_images"):
        ExportOptions.from_dict({"target": "cortex-m55", "firmware_images": 0})
    with pytest.raises(EdgesmithError, match="firmware_images"):
        ExportOptions.from_dict(
            {"target": "cortex-m55", "firmware_images": MAX_FIRMWARE_IMAGES + 1}
        )
    with pytest.raises(EdgesmithError, match="--firmware-images applies to a firmware target"):
        ExportOptions.from_dict({"target": "tflm", "firmware_images": 20})
    with pytest.raises(EdgesmithError, match="--tflm-sources applies"):
        ExportOptions.from_dict({"tflm_sources": "/x"})
    with pytest.raises(EdgesmithError, match="int8 input and output"):
        ExportOptions.from_dict({"target": "cortex-m55", "io_dtype": "uint8"})
    with pytest.raises(EdgesmithError, match="--check-on"):
        ExportOptions.from_dict({"target": "cortex-m55", "check_on": ("aarch64",)})


def test_export_refuses_other_formats_and_a_missing_toolchain_before_converting(
    digits_artifact, monkeypatch, tmp_path
):
    from edgesmith.export.exporter import prepare

    source = digits_artifact  # its manifest is read; no model is loaded, nothing converted
    options = ExportOptions(target="cortex-m55")
    with pytest.raises(EdgesmithError, match="runs .tflite files only"):
        prepare(source, "onnx", tmp_path / "out", options)
    with pytest.raises(EdgesmithError, match="--format tflite-int8, not tflite-fp32"):
        prepare(source, "tflite-fp32", tmp_path / "out", options)
    monkeypatch.setattr(check.shutil, "which", lambda name: None)
    with pytest.raises(EdgesmithError, match="apt-get install"):
        prepare(source, "tflite-int8", tmp_path / "out", options)
    assert not (tmp_path / "out").exists()


def test_static_check_refuses_what_the_firmware_cannot_register():
    report = {"operators": {"CONV_2D": 1, "CUSTOM_THING": 1}}
    with pytest.raises(CheckFailed, match="tflite-int8: --target cortex-m55: .*CUSTOM_THING"):
        check.static_check(report, FIXTURE, "tflite-int8", "cortex-m55")
    from edgesmith.export.ops import tflite_op_report

    ops = tflite_op_report(FIXTURE.read_bytes())
    assert check.static_check(ops, FIXTURE, "tflite-int8", "cortex-m55")["verdict"] == "pass"


def test_measured_agreement_passes_and_is_explained():
    record = check.firmware_record(_report(), ["firmware/main.cc"], 1.0)
    assert record["verdict"] == "pass" and "failures" not in record
    assert "CMSIS-NN rounds" in record["note"]
    assert "not time" in record["instructions_label"]
    target = Target.from_dict({"target": "cortex-m55", "verdict": "pass", "firmware": record})
    assert target.firmware.instructions_per_inference == 4_913_781
    assert Target.from_dict(target.to_dict()) == target  # the manifest round trip


def test_catastrophic_agreement_fails_the_check():
    record = check.firmware_record(_report(agreement_vs_litert=0.3), [], 1.0)
    assert record["verdict"] == "fail"
    assert "agreement with LiteRT 0.3000 < 0.5" in record["failures"][0]


def test_a_significant_accuracy_drop_against_litert_fails_the_check():
    litert = [True] * 180 + [False] * 20
    firmware = [True] * 150 + [False] * 50
    test = accuracy_drop_test(litert, firmware, 1.0)
    record = check.firmware_record(
        _report(accuracy=0.75, litert_accuracy=0.9, accuracy_test=test), [], 1.0
    )
    assert record["verdict"] == "fail"
    assert "15.00 points lower" in record["failures"][0]


def test_without_labels_accuracy_is_written_as_null():
    record = check.firmware_record(
        _report(accuracy=None, litert_accuracy=None, accuracy_test=None), [], 1.0
    )
    firmware = Firmware.from_dict(record)
    assert firmware.accuracy is None and firmware.to_dict()["accuracy"] is None
    assert "agreement with LiteRT 0.9700" in check.summary_line("tflite-int8", "cortex-m55", record)


def test_firmware_record_refuses_unknown_keys():
    record = check.firmware_record(_report(), [], 1.0)
    with pytest.raises(EdgesmithError, match="unknown key target.firmware.cycles"):
        Firmware.from_dict({**record, "cycles": 1})


def test_summary_line_says_instructions_are_not_time():
    line = check.summary_line("tflite-int8", "cortex-m55", check.firmware_record(_report(), [], 1))
    assert "flash 194.7 KB, RAM 57.9 KB" in line and "4,913,781 instructions/inference" in line
    assert "not time" in line and line.endswith(": pass")


def test_profile_budgets_apply_to_the_firmware_figures():
    from edgesmith.runtime.budgets import target_verdicts

    profile = load_profile("cortex-m55")
    assert profile.target == "cortex-m55" and profile.budgets.max_ram_kb == 256
    record = check.firmware_record(_report(), [], 1.0)
    target = Target.from_dict({"target": "cortex-m55", "verdict": "pass", "firmware": record})
    verdicts = target_verdicts(target, {"max_flash_kb": 190.0, "max_ram_kb": 64.0})
    assert verdicts["max_flash_kb"]["ok"] is False and verdicts["max_flash_kb"]["value"] == 194.7
    assert verdicts["max_ram_kb"]["ok"] is True
    assert "firmware ELF" in verdicts["max_ram_kb"]["source"]
    with pytest.raises(EdgesmithError, match="max_ram_kb"):
        Budgets.from_dict({"max_ram_kb": -1})


@pytest.mark.parametrize(
    ("name", "flash_kb", "ram_kb"), [("cortex-m4", 1024, 256), ("cortex-m7", 2048, 512)]
)
def test_new_core_profiles_target_their_firmware(name, flash_kb, ram_kb):
    profile = load_profile(name)
    assert profile.target == name and profile.target in FIRMWARE_TARGETS
    assert profile.formats == ("tflite-int8",) and profile.runtime == "litert"
    assert (profile.budgets.max_flash_kb, profile.budgets.max_ram_kb) == (flash_kb, ram_kb)
    assert ExportOptions(target=name).firmware_images == 100
    with pytest.raises(EdgesmithError, match=f"--target {name} builds a firmware"):
        ExportOptions.from_dict({"target": name, "io_dtype": "uint8"})


@pytest.mark.parametrize(
    ("target", "arch", "machine", "fpu"),
    [
        ("cortex-m4", "cortex-m4+fp", "mps2-an386", "-mfpu=fpv4-sp-d16"),
        ("cortex-m7", "cortex-m7+fp", "mps2-an500", "-mfpu=fpv5-d16"),
    ],
)
def test_handoff_flags_name_the_core_its_library_and_board(tmp_path, target, arch, machine, fpu):
    board = project.board_for(target)
    tflm = tmp_path / "tflite-micro"
    flags = handoff.build_flags_text(board, tflm, tflm / "gen" / "lib.a")
    assert f"TARGET_ARCH={arch} " in flags and f"-M {machine} " in flags
    assert f"-mcpu={target} -mthumb {fpu} -mfloat-abi=hard -D{board.device} " in flags
    assert f"startup_{board.device}.c" in flags


def test_handoff_main_runs_one_inference_with_the_measured_arena(tmp_path):
    text = handoff.inference_main_cc(arena_bytes=56_064)
    assert "kArenaBytes = 56064" in text and text.count("Invoke()") == 1
    assert "semihosting" not in text and "fopen" not in text
    board = project.board_for("cortex-m55")
    tflm = tmp_path / "tflite-micro"
    flags = handoff.build_flags_text(board, tflm, tmp_path / "tflite-micro" / "gen" / "lib.a")
    assert "-mcpu=cortex-m55" in flags and "-I$TFLM " in flags and "$TFLM/gen/lib.a" in flags
    assert str(tmp_path) not in flags  # relative to the TFLM tree: reads the same anywhere
    assert "-icount shift=0" in flags


def test_bundle_readme_lists_the_firmware(tmp_path):
    from edgesmith.app.build.bundle import _firmware_text

    record = check.firmware_record(_report(), [], 1.0)
    target = Target.from_dict({"target": "cortex-m55", "verdict": "pass", "firmware": record})

    @dataclasses.dataclass
    class Manifest:
        target: Target

    @dataclasses.dataclass
    class Chosen:
        manifest: Manifest

    text = _firmware_text(Chosen(Manifest(target)))
    assert "firmware/" in text and "main.cc (one inference" in text and "build_flags.txt" in text
    assert "4,913,781 instructions" in text and "97.0%" in text


def test_export_records_the_firmware_and_prints_it(digits_artifact, tmp_path, monkeypatch):
    """The export path with the firmware run replaced by a recorded one (no toolchain here)."""
    from edgesmith.core.progress import silent
    from edgesmith.export import export_formats
    from edgesmith.export.summary import summary_table

    calls = {}

    def fake_run_check(model_path, target, pixels, labels, folder, where, **kw):
        calls.update(images=len(pixels), labels=len(labels), drop=kw["max_accuracy_drop"])
        (folder / "firmware").mkdir()
        (folder / "firmware" / "main.cc").write_text("int main() { return 0; }\n")
        record = check.firmware_record(_report(num_images=len(pixels)), ["firmware/main.cc"], 1)
        return {"target": target, "verdict": "pass", "firmware": record, "files": ["x"]}

    monkeypatch.setattr(check, "check_available", lambda target, given=None: None)
    monkeypatch.setattr(check, "run_check", fake_run_check)
    results = export_formats(
        digits_artifact, "tflite-int8", tmp_path / "out", report=silent,
        target="cortex-m55", firmware_images=12,
    )  # fmt: skip
    (result,) = results
    assert result.artifact is not None, result.failure
    assert calls == {"images": 12, "labels": 12, "drop": 1.0}
    firmware = result.artifact.manifest.target.firmware
    assert firmware.num_images == 12 and firmware.flash_kb == 194.7
    assert "firmware/main.cc" in result.artifact.files  # hashed, so the bundle copies it
    assert "instructions/inference (QEMU count, not time)" in summary_table(results)
