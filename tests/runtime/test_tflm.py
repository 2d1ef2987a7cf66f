"""TFLite Micro as a runtime: same outputs as LiteRT, a measured arena, TFLM's own errors."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest

import edgesmith.runtime as rt
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import silent
from edgesmith.runtime.bench_schema import BenchResult
from edgesmith.runtime.providers import plan_tflite
from edgesmith.runtime.tflm_runner import (
    LATENCY_NOTE,
    PROVIDER_LABEL,
    parse_allocations,
    tflm_available,
)

pytestmark = pytest.mark.skipif(not tflm_available(), reason="tflite-micro is not installed")


def test_tflm_is_a_tflite_provider():
    plan = plan_tflite("tflm")
    assert plan.tflm and plan.label == "tflm"
    with pytest.raises(EdgesmithError, match="tflm"):
        plan_tflite("tflmx")


def test_tflm_gives_litert_builtin_outputs_on_the_int8_fixture(fixtures, digits):
    pixels = digits.x_eval[:64]
    with rt.load(fixtures / "int8.tflite", provider="tflm") as micro:
        assert micro.runtime == "tflm" and micro.provider_used == PROVIDER_LABEL
        assert micro.threads == 1
        got = micro.predict(pixels, batch_size=16)
    with rt.load(fixtures / "int8.tflite", xnnpack=False) as lite:
        want = lite.predict(pixels)
    assert got.shape == want.shape == (64, 10)
    # Both run TFLite's integer reference arithmetic: equal to one output step (1/256).
    assert np.abs(got - want).max() <= 1 / 256 + 1e-7
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.98


def test_tflm_runs_float_files_too(fixtures, digits, reference):
    with rt.load(fixtures / "float.tflite", provider="tflm") as micro:
        probs = micro.predict(digits.x_eval[:32])
    np.testing.assert_allclose(probs, reference["probabilities"], atol=1e-4)


def test_the_arena_is_measured_and_reported(fixtures):
    with rt.load(fixtures / "int8.tflite", provider="tflm") as micro:
        arena = micro.runner.arena
        extra = micro.runner.record_extra()["tflm"]
    assert arena["total"] == arena["head"] + arena["tail"]
    assert 1000 < arena["total"] < 100_000
    assert extra["arena_bytes"] == arena["total"] and extra["latency_note"] == LATENCY_NOTE
    assert rt.measure_tflm_arena(fixtures / "int8.tflite") == arena


def test_allocation_lines_are_parsed():
    lines = [
        "[RecordingMicroAllocator] Arena allocation total 55984 bytes",
        "[RecordingMicroAllocator] Arena allocation head 49152 bytes",
        "[RecordingMicroAllocator] Arena allocation tail 6832 bytes",
        "[RecordingMicroAllocator] 'TfLiteEvalTensor data' used 912 bytes",
    ]
    assert parse_allocations(lines) == {"total": 55984, "head": 49152, "tail": 6832}


def test_bench_record_carries_the_arena_and_labels_the_latency(fixtures, fast_plan):
    run = rt.benchmark(
        [str(fixtures / "int8.tflite")],
        data="digits",
        config=rt.BenchConfig(provider="tflm", timing=fast_plan),
        report=silent,
    )
    record = run.results[0]
    assert record.runtime == "tflm" and record.provider == PROVIDER_LABEL
    assert record.tflm.arena_bytes > 0
    assert "not device time" in record.tflm.latency_note
    assert record.accuracy > 0.8  # the same accuracy path as LiteRT's (digits eval split)
    written = json.loads(json.dumps(record.to_dict()))
    assert written["tflm"] == record.tflm.to_dict()
    assert BenchResult.from_dict(written) == record


def _with_unknown_op(source: bytes) -> bytes:
    """The fixture with its first operator code changed to one TFLM has no kernel for."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(source), 0)
    code = model.operatorCodes[0]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.HASHTABLE_LOOKUP
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_tflm_own_error_names_an_unsupported_op(fixtures, tmp_path):
    bad = tmp_path / "unknown_op.tflite"
    bad.write_bytes(_with_unknown_op((fixtures / "int8.tflite").read_bytes()))
    with pytest.raises(EdgesmithError, match="TFLite Micro cannot run it: .*HASHTABLE_LOOKUP"):
        rt.load(bad, provider="tflm")


def test_missing_tflm_says_what_to_install(fixtures, monkeypatch):
    real_import = builtins.__import__

    def no_tflm(name, *args, **kwargs):
        if name.startswith("tflite_micro"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tflm)
    with pytest.raises(EdgesmithError, match=r"pip install 'edgesmith\[mcu\]'"):
        rt.load(fixtures / "int8.tflite", provider="tflm")


def test_cli_bench_provider_tflm_prints_the_arena(fixtures, tmp_path):
    from edgesmith.app.cli import main

    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            str(fixtures / "int8.tflite"),
            "--provider",
            "tflm",
            "--min-runs",
            "20",
            "--min-seconds",
            "0.05",
            "--warmup-runs",
            "2",
            "--json-out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    record = json.loads(out.read_text())["results"][0]
    assert record["provider"] == PROVIDER_LABEL and record["tflm"]["arena_bytes"] > 0
