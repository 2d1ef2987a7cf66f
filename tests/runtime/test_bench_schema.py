"""The bench document as a typed contract: what is written is what is read, field by field.

Every latency here comes off a counter that each clock reading advances by a fixed step, never
off this machine's clock: the numbers are whatever they are, and the tests only ask that they
survive the round trip and that bad values are refused.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json

import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import TensorQuantization
from edgesmith.core.normalization import Normalization
from edgesmith.core.profiles import DeviceProfile, load_profile
from edgesmith.runtime.bench_schema import (
    SCHEMA,
    SCHEMA_VERSION,
    BenchDocument,
    BenchResult,
    BenchSettings,
    BudgetVerdict,
    Emulation,
    Instructions,
    Latency,
    Machine,
    ModelInput,
    TflmRecord,
    parse_document,
    read_document,
)
from edgesmith.runtime.machine import machine_info, same_machine
from edgesmith.runtime.timing import TimingPlan

SHA = "ab" * 32
RESULT_KEYS = [
    "path", "model_file", "sha256", "format", "runtime", "provider", "threads", "batch",
    "size_bytes", "gzip_bytes", "load_ms", "first_inference_ms", "latency_ms", "rounds",
    "throughput_ips", "accuracy", "num_eval", "macs", "gmacs_per_s", "peak_rss_mb",
    "load_rss_mb", "input", "labels", "metadata", "notes", "per_class", "confusion", "machine",
]  # fmt: skip
MACHINE_KEYS = [
    "cpu", "isa", "cores", "usable_cores", "os", "arch", "python", "runtime_versions",
]  # fmt: skip
INPUT_KEYS = ["shape", "layout", "dtype", "normalization", "raw_input", "quantization"]
LATENCY_KEYS = ["p50", "p90", "p99", "mean", "min", "max", "runs", "std"]
SETTINGS_KEYS = [
    "threads", "batch", "provider", "xnnpack", "foreign_normalization", "affinity",
    "eval_batch", "timing",
]  # fmt: skip


@pytest.fixture
def counter_clock(monkeypatch):
    """Time ``benchmark`` on a counter (0.25 ms per reading), not on this CPU."""
    from edgesmith.runtime import bench, timing

    ticks = itertools.count(0, 250_000)
    monkeypatch.setattr(bench, "measure", functools.partial(timing.measure, clock=ticks.__next__))


@pytest.fixture
def plan():
    return TimingPlan(min_runs=20, min_seconds=0.01, warmup_runs=2, warmup_seconds=0.0, rounds=4)


def full_document() -> BenchDocument:
    """A document with every record and every optional field set, built by hand."""
    machine = Machine(
        cpu="Test CPU",
        isa="x86-64-avx2",
        cores=4,
        usable_cores=2,
        os="Linux 6.8.0",
        arch="x86_64",
        python="3.12.1",
        runtime_versions={"edgesmith": "0.1.0", "numpy": "2.0.0"},
    )
    result = BenchResult(
        path="runs/x/tflite-int8",
        model_file="runs/x/tflite-int8/model.tflite",
        sha256=SHA,
        format="tflite",
        runtime="tflm",
        provider="tflm",
        threads=1,
        batch=1,
        latency=Latency(p50=1.0, p90=1.5, p99=2.0, mean=1.1, min=0.9, max=2.5, runs=100, std=0.2),
        accuracy=0.75,
        num_eval=4,
        size_bytes=1000,
        gzip_bytes=700,
        load_ms=3.5,
        first_inference_ms=1.25,
        rounds=6,
        throughput_ips=909.09,
        macs=23200,
        gmacs_per_s=0.0232,
        peak_rss_mb=80.5,
        load_rss_mb=-0.25,
        input=ModelInput(
            shape=(8, 8, 1),
            layout="NHWC",
            dtype="int8",
            normalization=Normalization("unit", 1 / 255, (0.0,), (1.0,)),
            raw_input=True,
            quantization=TensorQuantization(scale=0.5, zero_point=-128),
        ),
        labels=("a", "b"),
        metadata="embedded",
        notes=("a note",),
        per_class={"a": 1.0, "b": 0.5},
        confusion=((2, 0), (1, 1)),
        machine=machine,
        tflm=TflmRecord(
            arena_bytes=4096,
            arena_head_bytes=1024,
            arena_tail_bytes=3072,
            arena_source="measured",
            latency_note="host time, not device time",
        ),
        instructions=Instructions(
            per_inference=4131641.0, runs=40, overhead=73600, tool="valgrind callgrind", scope="x"
        ),
        budgets={
            "max_size_kb": BudgetVerdict(limit=512, value=0.9765625, ok=True),
            "min_accuracy": BudgetVerdict(limit=0.9, value=0.75, ok=False),
        },
    )
    return BenchDocument(
        schema_version=SCHEMA_VERSION,
        data="digits",
        settings=BenchSettings(
            threads=1,
            batch=1,
            provider="tflm",
            xnnpack=True,
            foreign_normalization="raw",
            affinity="0",
            eval_batch=32,
            timing=TimingPlan(min_runs=10, min_seconds=0.5),
        ),
        machine=machine,
        results=(result,),
        store="bench.models",
        created="2025-01-01T00:00:00+00:00",
        device=load_profile("cpu-x86"),
        host="pi@device",
        emulation=Emulation(target="x86-64-avx2", emulator="qemu -cpu Haswell", note="emulated"),
    )


def json_round_trip(document: BenchDocument) -> dict:
    return json.loads(json.dumps(document.to_dict()))


def test_a_real_benchmark_document_round_trips(fixtures, counter_clock, plan):
    from edgesmith.runtime.bench import BenchConfig, benchmark
    from edgesmith.runtime.budgets import judge

    paths = [fixtures / "int8.tflite", fixtures / "raw.onnx"]
    run = benchmark(paths, data="digits", config=BenchConfig(timing=plan))
    document = judge(run.document, load_profile("cpu-x86")).replace(store="b.models", host="h")
    written = json_round_trip(document)
    assert parse_document(written) == document
    assert parse_document(written).to_dict() == written  # and written again: the same JSON
    # every sub-record is typed, on both sides of the round trip
    for record in parse_document(written).results:
        assert isinstance(record.latency, Latency) and isinstance(record.machine, Machine)
        assert isinstance(record.input, ModelInput) and isinstance(record.confusion, tuple)
        assert all(isinstance(v, BudgetVerdict) for v in record.budgets.values())
    assert isinstance(document.device, DeviceProfile) and document.device.name == "cpu-x86"
    assert isinstance(document.settings.timing, TimingPlan)


def test_benchmark_without_data_round_trips(fixtures, counter_clock, plan):
    from edgesmith.runtime.bench import BenchConfig, benchmark

    run = benchmark([fixtures / "foreign.tflite"], config=BenchConfig(batch=2, timing=plan))
    written = json_round_trip(run.document)
    assert parse_document(written) == run.document
    record = written["results"][0]
    assert record["accuracy"] is None and record["num_eval"] == 0
    assert not {"per_class", "confusion", "tflm", "budgets"} & set(record)  # written when set


def test_the_written_keys_are_the_documented_ones():
    written = json_round_trip(full_document())
    assert list(written) == [
        "schema", "schema_version", "created", "data", "settings", "machine", "results",
        "store", "device", "host", "emulation",
    ]  # fmt: skip
    assert written["schema"] == SCHEMA and written["schema_version"] == 2
    assert list(written["settings"]) == SETTINGS_KEYS
    assert list(written["machine"]) == MACHINE_KEYS
    record = written["results"][0]
    notes = RESULT_KEYS.index("notes") + 1
    assert list(record) == [
        *RESULT_KEYS[:notes], "tflm", "instructions", *RESULT_KEYS[notes:], "budgets",
    ]  # fmt: skip
    assert record["instructions"]["per_inference"] == 4131641.0
    assert written["emulation"]["target"] == "x86-64-avx2"
    assert list(record["latency_ms"]) == LATENCY_KEYS
    assert list(record["input"]) == INPUT_KEYS
    assert record["input"]["quantization"] == {"scale": 0.5, "zero_point": -128}
    assert record["tflm"]["arena_bytes"] == 4096
    assert record["budgets"]["min_accuracy"] == {"limit": 0.9, "value": 0.75, "ok": False}
    assert record["confusion"] == [[2, 0], [1, 1]] and record["labels"] == ["a", "b"]
    assert written["device"] == load_profile("cpu-x86").to_dict()
    assert parse_document(written) == full_document()


def test_a_document_from_disk_round_trips(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(full_document().to_dict(), indent=2))
    assert read_document(path) == full_document()


def test_minimal_and_version_1_documents_still_parse():
    ms = 1.0
    document = {
        "schema": SCHEMA,
        "schema_version": 1,
        "data": None,
        "settings": {},
        "machine": {},
        "results": [
            {
                "path": "m.tflite",
                "sha256": SHA,
                "latency_ms": {
                    "p50": ms,
                    "p90": ms,
                    "p99": ms,
                    "mean": ms,
                    "min": ms,
                    "max": ms,
                    "runs": 5,
                },
                "accuracy": None,
                "newer_key": "ignored",
            }
        ],  # fmt: skip
        "newer_key": {"ignored": True},
    }
    parsed = parse_document(document)
    assert parsed.store is None and parsed.machine == Machine() and parsed.device is None
    (record,) = parsed.results
    assert record.format == "tflite" and record.model_file == "m.tflite"
    assert record.threads == 1 and record.batch == 1 and record.latency.std == 0.0
    assert record.input is None and record.notes == () and record.machine is None
    assert parsed.settings == BenchSettings(threads=1, batch=1, provider=None, xnnpack=True)
    assert parse_document(json.loads(json.dumps(parsed.to_dict()))) == parsed


def test_a_device_record_from_a_newer_edgesmith_keeps_the_keys_this_one_knows():
    written = json_round_trip(full_document())
    written["device"]["some_new_setting"] = 3
    assert parse_document(written).device == load_profile("cpu-x86")


def test_machine_reads_as_its_record_for_the_machine_comparison():
    here = Machine.from_dict(machine_info())
    assert dict(here) == machine_info() == here.to_dict()
    assert here["cpu"] == here.cpu and here.get("nope") is None and len(here) == 8
    assert same_machine(here, machine_info()) == []
    assert same_machine(Machine(), machine_info())  # a record that says nothing is another


def _result(document: dict) -> dict:
    return document["results"][0]


# (what to change in a valid document, the key the one-line message must name)
MALFORMED = [
    (lambda d: d.update(data=5), "data must be a string or null"),
    (lambda d: d.update(created=[]), "created must be a string or null"),
    (lambda d: d.update(host=1), "host must be a string or null"),
    (lambda d: d.update(machine=[]), "machine must be an object"),
    (lambda d: d["machine"].update(cores="four"), "machine.cores must be a whole number >= 1"),
    (lambda d: d["machine"].update(cpu=3), "machine.cpu must be a string"),
    (lambda d: d["machine"].update(runtime_versions={"numpy": 2}), "machine.runtime_versions"),
    (lambda d: d["settings"].update(xnnpack="yes"), "settings.xnnpack must be true or false"),
    (lambda d: d["settings"].update(eval_batch=0), "settings.eval_batch must be a whole number"),
    (lambda d: d["settings"].update(timing=[]), "settings.timing must be an object or null"),
    (lambda d: d["settings"]["timing"].update(min_runs=-1), "settings.timing:"),
    (lambda d: d["device"].update(runtime="tvm"), "device: device profile 'cpu-x86': runtime"),
    (lambda d: d.update(device="cpu-x86"), "device must be an object or null"),
    (lambda d: _result(d).update(path=""), "results[0].path must be a non-empty string"),
    (lambda d: _result(d).update(num_eval=-1), "results[0].num_eval must be a whole number"),
    (lambda d: _result(d).update(num_eval=0), "results[0].accuracy needs num_eval >= 1"),
    (lambda d: _result(d).update(size_bytes=1.5), "results[0].size_bytes must be a whole number"),
    (lambda d: _result(d).update(load_ms=-1), "results[0].load_ms must be a finite number >= 0"),
    (lambda d: _result(d).update(macs="many"), "results[0].macs must be a whole number"),
    (lambda d: _result(d).update(provider=1), "results[0].provider must be a string"),
    (lambda d: _result(d).update(labels=[1, 2]), "results[0].labels must be a list of strings"),
    (lambda d: _result(d).update(notes="x"), "results[0].notes must be a list of strings"),
    (lambda d: _result(d).update(machine="here"), "results[0].machine must be an object"),
    (lambda d: _result(d)["latency_ms"].update(runs=0), "results[0].latency_ms.runs must be"),
    (lambda d: _result(d)["latency_ms"].update(std="x"), "results[0].latency_ms.std must be"),
    (lambda d: _result(d).update(latency_ms=None), "results[0].latency_ms must be an object"),
    (lambda d: _result(d).update(input=[8, 8]), "results[0].input must be an object"),
    (lambda d: _result(d)["input"].update(shape=[0, 8]), "results[0].input.shape must be a list"),
    (lambda d: _result(d)["input"].update(raw_input="yes"), "results[0].input.raw_input must be"),
    (lambda d: _result(d)["input"].update(normalization={"name": "unit"}), "input.normalization"),
    (lambda d: _result(d)["input"]["quantization"].update(scale=-1), "input.quantization.scale"),
    (lambda d: _result(d)["input"]["quantization"].update(zero_point=0.5), "input.quantization"),
    (lambda d: _result(d).update(per_class={"a": 1.5}), "results[0].per_class.a must be a frac"),
    (lambda d: _result(d).update(per_class=[1.0]), "results[0].per_class must be an object"),
    (lambda d: _result(d).update(confusion=[[1, 2]]), "results[0].confusion must be a square"),
    (lambda d: _result(d).update(confusion=[[1, -2], [0, 1]]), "results[0].confusion must be"),
    (lambda d: _result(d)["tflm"].update(arena_bytes=-1), "results[0].tflm.arena_bytes must be"),
    (lambda d: _result(d)["tflm"].update(latency_note=5), "results[0].tflm.latency_note must be"),
    (lambda d: _result(d).update(budgets=[]), "results[0].budgets must be an object"),
    (lambda d: _result(d).update(instructions=5), "results[0].instructions must be an object"),
    (
        lambda d: _result(d)["instructions"].update(per_inference=float("nan")),
        "results[0].instructions.per_inference must be a number in (0, 1e+15]",
    ),
    (
        lambda d: _result(d)["instructions"].update(per_inference=0),
        "results[0].instructions.per_inference must be",
    ),
    (lambda d: _result(d)["instructions"].update(runs=0), "results[0].instructions.runs must"),
    (lambda d: _result(d)["instructions"].update(tool=3), "results[0].instructions.tool must"),
    (lambda d: d.update(emulation="qemu"), "emulation must be an object"),
    (lambda d: d["emulation"].update(target=""), "emulation.target must be a non-empty string"),
    (lambda d: d["emulation"].update(emulator=None), "emulation.emulator must be a non-empty"),
    (lambda d: _result(d)["budgets"].update(max_size_kb=1), "results[0].budgets.max_size_kb must"),
    (
        lambda d: _result(d)["budgets"]["max_size_kb"].update(ok="yes"),
        "results[0].budgets.max_size_kb.ok must be true, false or null",
    ),
    (
        lambda d: _result(d)["budgets"]["max_size_kb"].update(limit=0),
        "results[0].budgets.max_size_kb.limit must be a positive number",
    ),
    (
        lambda d: _result(d)["budgets"]["max_size_kb"].update(value=None),
        "results[0].budgets.max_size_kb.ok must be null when value is null",
    ),
]


@pytest.mark.parametrize(("change", "names"), MALFORMED)
def test_malformed_values_are_refused_in_one_line_naming_the_key(change, names):
    document = json_round_trip(full_document())
    bad = copy.deepcopy(document)
    change(bad)
    assert bad != document
    with pytest.raises(EdgesmithError) as caught:
        parse_document(bad, "baseline b.json")
    message = str(caught.value)
    assert names in message and "\n" not in message
    assert message.startswith("baseline b.json")


def test_the_refusal_shows_the_value_it_refused():
    document = json_round_trip(full_document())
    _result(document)["machine"]["cores"] = "four"
    with pytest.raises(EdgesmithError, match=r"results\[0\]\.machine\.cores .* Received: 'four'"):
        parse_document(document)
