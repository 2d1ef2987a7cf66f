import gzip
import json
from pathlib import Path

import numpy as np
import pytest

import edgesmith.runtime as rt
from edgesmith.app.cli import main
from edgesmith.runtime.bench import BenchConfig, benchmark
from edgesmith.runtime.bench_schema import SCHEMA, BudgetVerdict, parse_document
from edgesmith.runtime.machine import parse_cpus
from edgesmith.runtime.plots import pareto_front, plots_available
from edgesmith.runtime.report import markdown, terminal_table
from edgesmith.runtime.stats import wilson_interval

SCHEMA_KEYS = {
    "path", "format", "runtime", "provider", "threads", "batch", "size_bytes", "gzip_bytes",
    "load_ms", "first_inference_ms", "latency_ms", "throughput_ips", "accuracy", "num_eval",
    "macs", "gmacs_per_s", "peak_rss_mb", "machine",
}  # fmt: skip


def test_benchmark_two_formats_interleaved(fixtures, digits, fast_plan):
    paths = [fixtures / "int8.tflite", fixtures / "raw.onnx"]
    run = benchmark(paths, data="digits", config=BenchConfig(threads=1, timing=fast_plan))
    doc = run.document
    assert doc.data == "digits" and doc.to_dict()["schema"] == SCHEMA
    assert len(run.rounds) == 2 and len(run.rounds[0]) == len(run.rounds[1])
    for path, record in zip(paths, run.results, strict=True):
        assert SCHEMA_KEYS <= set(record.to_dict())
        lat = record.latency
        assert lat.runs >= fast_plan.min_runs
        assert lat.min <= lat.p50 <= lat.p90 <= lat.p99 <= lat.max
        assert record.size_bytes == path.stat().st_size
        assert record.gzip_bytes == len(gzip.compress(path.read_bytes(), 9, mtime=0))
        assert record.throughput_ips == pytest.approx(1000.0 / lat.mean)
        assert record.gmacs_per_s == pytest.approx(record.macs / (lat.p50 / 1e3) / 1e9)
        assert record.threads == 1 and record.batch == 1
        # accuracy from the same runner equals what predict() gives
        model = rt.load(path, threads=1)
        expected = float((model.predict(digits.x_eval).argmax(1) == digits.y_eval).mean())
        assert record.accuracy == pytest.approx(expected)
        assert record.num_eval == len(digits.y_eval) == np.sum(record.confusion)
        confusion = np.array(record.confusion)
        assert np.trace(confusion) / confusion.sum() == pytest.approx(expected)
        assert set(record.per_class) == set(digits.labels)
        assert record.peak_rss_mb > 0 and record.machine.cores >= 1
    assert run.results[0].runtime == "litert" and run.results[1].runtime == "onnxruntime"
    # written and read back through the one schema: the same document
    assert parse_document(json.loads(json.dumps(doc.to_dict()))) == doc


def test_batch_timing_without_data_uses_noise_and_reports_no_accuracy(fixtures, fast_plan):
    run = benchmark([fixtures / "foreign.tflite"], config=BenchConfig(batch=4, timing=fast_plan))
    record = run.results[0]
    assert record.batch == 4 and record.accuracy is None and record.macs is None
    assert record.throughput_ips == pytest.approx(4000.0 / record.latency.mean)
    assert any("no edgesmith metadata" in note for note in record.notes)


def test_reports_render_every_model(fixtures, fast_plan, tmp_path):
    run = benchmark(
        [fixtures / "float.tflite", fixtures / "int8.tflite"],
        data="digits",
        config=BenchConfig(timing=fast_plan),
    )
    table = terminal_table(run.document)
    assert "float.tflite" in table and "int8.tflite" in table and "p50 ms" in table
    text = markdown(run.document, [tmp_path / "plots" / "latency.png"], base=tmp_path)
    assert text.count("| float.tflite |") == 1 and "![latency](plots/latency.png)" in text


def test_pareto_front():
    latencies = [1.0, 2.0, 0.5, 3.0, 2.5]
    accuracies = [0.90, 0.95, 0.80, 0.94, None]
    assert pareto_front(latencies, accuracies) == [2, 0, 1]


def test_cpu_lists():
    assert parse_cpus("0") == {0}
    if len(parse_cpus("0-1")) == 2:
        assert parse_cpus("0,1") == {0, 1}


def test_bench_cli_writes_json_report_and_plots(fixtures, tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = [
        "bench", str(fixtures / "int8.tflite"), str(fixtures / "float.tflite"),
        "--data", "digits", "--min-runs", "30", "--min-seconds", "0.05",
        "--warmup-runs", "2", "--warmup-seconds", "0", "--affinity", "0",
        "--json-out", str(out), "--report", str(tmp_path / "r" / "bench.md"),
        "--plots", str(tmp_path / "r" / "plots"), "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "int8.tflite" in table and "top-1 %" in table
    doc = json.loads(out.read_text())
    first = doc["results"][0]
    low, high = wilson_interval(round(first["accuracy"] * first["num_eval"]), first["num_eval"])
    assert "95% CI" in table and f"{100 * low:.1f}-{100 * high:.1f}" in table
    assert [r["path"] for r in doc["results"]] == args[1:3]
    assert doc["settings"]["affinity"] == "0"
    assert doc["schema_version"] == 2 and doc["store"] == "bench.models"
    for record in doc["results"]:  # the baseline keeps the very files it measured
        stored = tmp_path / "bench.models" / f"{record['sha256']}.tflite"
        assert stored.read_bytes() == Path(record["model_file"]).read_bytes()
    assert parse_document(doc).results[0].latency.p50 == doc["results"][0]["latency_ms"]["p50"]
    report = (tmp_path / "r" / "bench.md").read_text()
    assert "| int8.tflite |" in report
    if plots_available():
        for name in ("tradeoff.png", "latency.png"):
            png = tmp_path / "r" / "plots" / name
            assert png.read_bytes()[:4] == b"\x89PNG"
            assert f"](plots/{name})" in report


def test_bench_cli_json_to_stdout_keeps_the_table_on_stderr(fixtures, capsys):
    args = ["bench", str(fixtures / "int8.tflite"), "--min-runs", "20", "--min-seconds", "0"]
    assert main([*args, "--warmup-seconds", "0", "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["schema"] == SCHEMA
    assert "p50 ms" in captured.err


def test_affinity_applies_during_the_run_and_is_restored(fixtures, fast_plan, monkeypatch):
    import os

    from edgesmith.runtime import timing

    before = os.sched_getaffinity(0)
    seen = []
    original = timing.time_block

    def spy(step, runs, *clock):
        seen.append(os.sched_getaffinity(0))
        return original(step, runs, *clock)

    monkeypatch.setattr(timing, "time_block", spy)
    benchmark([fixtures / "int8.tflite"], config=BenchConfig(affinity="0", timing=fast_plan))
    assert seen and all(cpus == {0} for cpus in seen)
    assert os.sched_getaffinity(0) == before


def test_device_profile_sets_the_runtime_and_judges_the_budgets(fixtures, tmp_path, capsys):
    profile = tmp_path / "tiny.yaml"
    profile.write_text(
        "name: tiny\nruntime: litert\nprovider: builtin\nthreads: 1\nformats: [tflite-int8]\n"
        "budgets: {max_size_kb: 4, max_latency_ms: 50, min_accuracy: 0.5}\n"
    )
    out = tmp_path / "b.json"
    args = ["bench", str(fixtures / "int8.tflite"), "--device", str(profile), "--data", "digits"]
    fast = ["--min-runs", "20", "--min-seconds", "0", "--warmup-seconds", "0", "--quiet"]
    assert main([*args, *fast, "--json-out", str(out)]) == 1  # over a budget: a failed check
    captured = capsys.readouterr()
    text = captured.out
    assert "device tiny:" in text and "over budget: max_size_kb 5.8" in text
    assert "1 of 1 model(s) over the budgets of device tiny: int8.tflite" in captured.err
    record = json.loads(out.read_text())["results"][0]
    assert record["provider"] == "cpu"  # builtin kernels: XNNPACK off, as the profile says
    assert record["budgets"]["max_size_kb"]["ok"] is False
    assert record["budgets"]["max_latency_ms"]["ok"] is True
    assert record["budgets"]["min_accuracy"]["ok"] is True
    assert main(["bench", str(fixtures / "raw.onnx"), "--device", str(profile), *fast]) == 2
    assert "runs litert (tflite files)" in capsys.readouterr().err
    profile.write_text(profile.read_text().replace("max_size_kb: 4", "max_size_kb: 64"))
    assert main([*args, *fast]) == 0  # within every budget
    assert "fits the budgets" in capsys.readouterr().out


def _result(**fields):
    from edgesmith.runtime.bench_schema import BenchResult, Latency

    values = {
        "path": "m.tflite", "model_file": "m.tflite", "sha256": "0" * 64, "format": "tflite",
        "provider": "cpu", "threads": 1, "batch": 1, "accuracy": None, "num_eval": 0,
        "latency": Latency(p50=3.0, p90=3.0, p99=3.0, mean=3.0, min=3.0, max=3.0, runs=10),
    }  # fmt: skip
    return BenchResult(**{**values, **fields})


def test_budget_verdicts_without_accuracy():
    from edgesmith.runtime.budgets import budget_verdicts, describe

    record = _result(size_bytes=2048, peak_rss_mb=100.0, accuracy=None)
    verdicts = budget_verdicts(
        record, {"max_latency_ms": 2.0, "min_accuracy": 0.8, "max_ram_mb": None}
    )
    assert verdicts["max_latency_ms"] == BudgetVerdict(limit=2.0, value=3.0, ok=False)
    assert verdicts["min_accuracy"].ok is None and "max_ram_mb" not in verdicts
    assert describe("m", verdicts) == (
        "m: over budget: max_latency_ms 3 vs 2 (not measured: min_accuracy)"
    )


def test_same_named_artifacts_keep_their_parent_in_the_table():
    from edgesmith.runtime.report import display_name

    results = [_result(path=p) for p in ("a/tflite-int8", "b/tflite-int8", "b/onnx")]
    assert [display_name(r, results) for r in results] == ["a/tflite-int8", "b/tflite-int8", "onnx"]
    assert display_name(results[0]) == "tflite-int8"


@pytest.mark.slow
def test_normalization_applies_to_foreign_files_only(fixtures, tmp_path, capsys):
    """A file without metadata (MLCommons' ResNet-8, say) gets --normalization; ours keep theirs."""
    from edgesmith.app.cli import main

    out = tmp_path / "b.json"
    args = [
        "bench",
        str(fixtures / "foreign.tflite"),
        str(fixtures / "float.tflite"),
        "--data",
        "digits",
        "--min-runs",
        "20",
        "--min-seconds",
        "0",
        "--json-out",
        str(out),
    ]
    assert main([*args, "--normalization", "unit", "--quiet"]) == 0
    told = {Path(r["path"]).name: r["accuracy"] for r in json.loads(out.read_text())["results"]}
    assert told["foreign.tflite"] == pytest.approx(told["float.tflite"], abs=1e-9)
    assert told["foreign.tflite"] > 0.85
    assert main([*args, "--quiet"]) == 0  # untold: raw pixels fed as model inputs
    untold = {Path(r["path"]).name: r for r in json.loads(out.read_text())["results"]}
    assert any("no edgesmith metadata" in note for note in untold["foreign.tflite"]["notes"])
    assert untold["foreign.tflite"]["accuracy"] != told["foreign.tflite"]
    assert untold["float.tflite"]["accuracy"] == told["float.tflite"]
    assert main([*args, "--normalization", "unity"]) == 2
    assert "unknown normalization 'unity'" in capsys.readouterr().err
