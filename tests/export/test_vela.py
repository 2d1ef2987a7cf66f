"""Arm Vela on the small fixtures: placement, memory, the estimate, and the target check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgesmith.core.errors import CheckFailed, EdgesmithError
from edgesmith.core.manifest import Target, Vela
from edgesmith.export.c_array import read_c_array
from edgesmith.export.ops import tflite_op_report
from edgesmith.export.targets import check_target, check_tflm
from edgesmith.export.vela import (
    LABEL,
    NPU_OP,
    VelaConfig,
    compile_for_npu,
    parse_counts,
    vela_available,
)
from edgesmith.runtime.budgets import target_verdicts

FIXTURES = Path(__file__).resolve().parents[1] / "runtime" / "fixtures"
needs_vela = pytest.mark.skipif(not vela_available(), reason="ethos-u-vela is not installed")


@needs_vela
def test_int8_fixture_runs_wholly_on_the_npu(tmp_path):
    record = compile_for_npu(
        FIXTURES / "int8.tflite", VelaConfig("ethos-u55-128"), tmp_path / "out"
    )
    assert record["label"] == LABEL and "not a measurement" in record["note"]
    assert record["config"]["system_config"] == "Ethos_U55_High_End_Embedded"
    assert record["cpu_ops"] == 0 and record["cpu_fallback"] == {} and record["npu_ops"] > 0
    assert record["npu_fraction"] == 1.0
    assert record["cycles"] > 0 and 0 < record["inference_ms"] < 1
    assert record["inference_ms"] == pytest.approx(record["cycles"] / 500e3, rel=1e-3)
    assert record["sram_kb"] > 0 and record["flash_kb"] > 0
    compiled = (tmp_path / "out" / "model_vela.tflite").read_bytes()
    assert tflite_op_report(compiled)["operators"] == {NPU_OP: 1}


@needs_vela
def test_float_fixture_falls_back_to_the_cpu_op_by_op(tmp_path):
    record = compile_for_npu(FIXTURES / "float.tflite", VelaConfig("ethos-u55-128"), tmp_path)
    assert record["npu_ops"] == 0 and record["cpu_ops"] == 6
    assert record["cpu_fallback"] == {
        "CONV_2D": 2,
        "MAX_POOL_2D": 1,
        "MEAN": 1,
        "FULLY_CONNECTED": 1,
        "SOFTMAX": 1,
    }
    target = Target(target="ethos-u55-128", verdict="pass", vela=Vela.from_dict(record))
    verdicts = target_verdicts(target, {"min_npu_ops": 0.9, "max_sram_kb": 384})
    assert verdicts["min_npu_ops"]["ok"] is False
    assert verdicts["min_npu_ops"]["source"] == LABEL


@needs_vela
def test_bigger_npu_and_higher_clock_estimate_less_time(tmp_path):
    model = FIXTURES / "int8.tflite"
    u55 = compile_for_npu(model, VelaConfig("ethos-u55-128"), tmp_path / "a")
    u65 = compile_for_npu(model, VelaConfig("ethos-u65-256"), tmp_path / "b")
    slow = compile_for_npu(model, VelaConfig("ethos-u55-128", clock_mhz=100), tmp_path / "c")
    assert u65["config"]["memory_mode"] == "Dedicated_Sram" and u65["dram_kb"] > 0
    assert u65["inference_ms"] < u55["inference_ms"] < slow["inference_ms"]
    assert slow["clock_mhz"] == 100


@needs_vela
def test_ethos_target_writes_the_compiled_file_and_its_c_array(tmp_path):
    model = tmp_path / "model.tflite"
    shutil.copy(FIXTURES / "int8.tflite", model)
    report = tflite_op_report(model.read_bytes())
    record = check_target("ethos-u55-128", report, model, "tflite-int8", vela={"clock_mhz": 500})
    assert record["files"] == ["model_vela.tflite", "model_vela_data.cc", "model_vela_data.h"]
    compiled = (tmp_path / "model_vela.tflite").read_bytes()
    assert read_c_array((tmp_path / "model_vela_data.cc").read_text()) == compiled
    assert record["vela"]["file_bytes"] == len(compiled)


@needs_vela
def test_unknown_system_config_is_named(tmp_path):
    config = VelaConfig("ethos-u55-128", system_config="No_Such_System", clock_mhz=300)
    with pytest.raises(EdgesmithError, match="No_Such_System.*Ethos_U55_High_End_Embedded"):
        compile_for_npu(FIXTURES / "int8.tflite", config, tmp_path)


@needs_vela
def test_a_file_vela_cannot_read_fails_the_check(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    with pytest.raises(CheckFailed, match="Vela cannot compile it for ethos-u55-128"):
        compile_for_npu(bad, VelaConfig("ethos-u55-128"), tmp_path / "out")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"accelerator": "ethos-u99"}, "accelerator must be one of"),
        ({"accelerator": "ethos-u55-128", "clock_mhz": 0}, "clock_mhz must be a positive"),
        ({"accelerator": "ethos-u55-128", "memory_mode": "a b"}, "memory_mode must be"),
        ({"accelerator": "ethos-u55-128", "clock": 5}, "unknown field"),
    ],
)
def test_bad_vela_settings_are_named(values, message):
    with pytest.raises(EdgesmithError, match=message):
        VelaConfig.from_dict(values)


def test_counts_are_read_from_the_summary():
    text = "Network summary\nCPU operators = 2 (4.0%)\nNPU operators = 48 (96.0%)\n"
    assert parse_counts(text) == {"CPU": 2, "NPU": 48}


def test_tflm_target_records_the_measured_arena_beside_the_estimate(tmp_path):
    from edgesmith.runtime import tflm_available

    if not tflm_available():
        pytest.skip("tflite-micro is not installed")
    model = FIXTURES / "int8.tflite"
    report = tflite_op_report(model.read_bytes())
    record = check_tflm(report, model.stat().st_size, "tflite-int8", model)
    assert record["arena_source"] == "measured"
    assert record["arena_bytes"] == record["arena_head_bytes"] + record["arena_tail_bytes"]
    # TFLM's bookkeeping (the tail) is what the activation-only estimate leaves out.
    assert record["arena_bytes"] > record["arena_bytes_former_estimate"]
    verdict = target_verdicts(Target.from_dict(record), {"max_arena_kb": 192})["max_arena_kb"]
    assert verdict["ok"] is True and verdict["source"] == "measured by TFLM"


def test_tflm_target_without_tflm_keeps_a_labelled_estimate(monkeypatch):
    import edgesmith.runtime as rt

    monkeypatch.setattr(rt, "tflm_available", lambda: False)
    model = FIXTURES / "int8.tflite"
    report = tflite_op_report(model.read_bytes())
    record = check_tflm(report, model.stat().st_size, "tflite-int8", model)
    assert record["arena_source"] == "estimate" and "arena_bytes" not in record
    assert "edgesmith[mcu]" in record["arena_note"]
    verdict = target_verdicts(Target.from_dict(record), {"max_arena_kb": 192})["max_arena_kb"]
    assert verdict["source"] == "estimate"
