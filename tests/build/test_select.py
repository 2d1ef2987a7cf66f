"""Choosing among candidate rows: budgets, ties, failed exports, and the closest miss."""

from __future__ import annotations

from edgesmith.app.build.candidates import Exported
from edgesmith.app.build.select import candidate_row, choose, nothing_fits, table
from edgesmith.runtime.bench_schema import BenchResult, Latency


def record(accuracy: float, size_kb: float, p50: float) -> BenchResult:
    return BenchResult(
        path="m.tflite",
        model_file="m.tflite",
        sha256="0" * 64,
        format="tflite",
        provider="xnnpack",
        threads=1,
        batch=1,
        latency=Latency(p50=p50, p90=p50, p99=p50, mean=p50, min=p50, max=p50, runs=100),
        accuracy=accuracy,
        num_eval=1000,
        size_bytes=int(size_kb * 1024),
        peak_rss_mb=60.0,
    )


def rows(budgets: dict) -> list[dict]:
    made = [
        candidate_row(Exported("a", "tflite-int8", None), record(0.90, 90, 0.2), budgets),
        candidate_row(Exported("b", "tflite-int8", None), record(0.92, 300, 0.5), budgets),
        candidate_row(Exported("c", "tflite-int8", None), record(0.92, 95, 0.3), budgets),
        candidate_row(Exported("d", "tflite-int8", None, failure="parity fail"), None, budgets),
    ]
    return made


def test_best_accuracy_then_lower_p50_among_the_fitting():
    made = rows({"max_size_kb": 100, "max_latency_ms": 1.0})
    assert [r["fits"] for r in made] == [True, False, True, False]
    assert choose(made)["name"] == "c/tflite-int8"  # b is as accurate but too big
    made = rows({"max_size_kb": 1000})
    assert choose(made)["name"] == "c/tflite-int8"  # tie with b on accuracy: lower p50 wins


def test_nothing_fits_names_the_budget_and_the_closest():
    made = rows({"max_size_kb": 80, "min_accuracy": 0.95})
    assert choose(made) is None
    text = str(nothing_fits(made, "tiny"))
    assert "nothing met max_size_kb 80 KB (best reached 90 KB)" in text
    assert "min_accuracy 95.00% (best reached 92.00%)" in text
    # a misses size by 12.5% and accuracy by 5.3%; c by 18.75% and 3.2%: a is closest
    assert "closest is a/tflite-int8, which misses max_size_kb by 10 KB" in text


def test_table_marks_the_choice_and_shows_failed_exports():
    made = rows({"max_size_kb": 100})
    text = table(made, choose(made))
    lines = text.splitlines()
    assert lines[0].split() == ["candidate", "top-1", "%", "size", "KB", "p50", "ms", "max_size_kb"]
    assert lines[4].startswith("*  c/tflite-int8") and lines[4].endswith("pass")
    assert "b/tflite-int8" in lines[3] and lines[3].endswith("FAIL")
    assert lines[5].endswith("export failed: parity fail")
