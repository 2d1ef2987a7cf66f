"""Instructions per inference under callgrind: refused where a count cannot be trusted, and
reproducible across processes where it can.

The counted runs need Debian's valgrind and skip with that reason without it.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from edgesmith.app.cli import main
from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime import instructions
from edgesmith.runtime.bench import BenchConfig
from edgesmith.runtime.bench_schema import Instructions, read_document
from edgesmith.runtime.child import run_job
from edgesmith.runtime.timing import TimingPlan

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="needs valgrind (apt-get install valgrind)"
)
QUICK = TimingPlan(min_runs=2, min_seconds=0.0, warmup_runs=1, warmup_seconds=0.0)


@pytest.mark.parametrize(
    ("config", "runs", "match"),
    [
        (BenchConfig(threads=2), 40, "counts one thread.*got --threads 2"),
        (BenchConfig(), 41, "even number in \\[2, 100000\\]. Received: 41"),
        (BenchConfig(), 0, "Received: 0"),
    ],
)
def test_counts_that_cannot_be_trusted_are_refused(config, runs, match):
    with pytest.raises(EdgesmithError, match=match):
        instructions.check_countable(config, runs)


def test_a_missing_valgrind_names_the_debian_package(monkeypatch):
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    with pytest.raises(EdgesmithError, match="apt-get install valgrind"):
        instructions.check_countable(BenchConfig())


def test_the_cli_refuses_before_it_times_anything(fixtures, capsys):
    code = main(["bench", str(fixtures / "int8.tflite"), "--measure", "instructions",
                 "--threads", "2"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and "timing" not in captured.err  # refused before the bench ran
    assert captured.err.count("\n") == 1 and "use --threads 1" in captured.err


def test_the_count_job_runs_each_loop_outside_callgrind_too(fixtures):
    request = {
        "job": "count",
        "paths": [str(fixtures / "int8.tflite"), str(fixtures / "int8_io.onnx")],
        "config": BenchConfig(timing=QUICK).to_dict(),
        "data": None,
        "runs": 4,
    }
    answer = run_job([sys.executable], request, label="child", timeout=120)
    assert answer["runs"] == 4
    assert [m["runtime"] for m in answer["models"]] == ["litert", "onnxruntime"]
    assert all(m["parts"] == [None, None, None] for m in answer["models"])


def _profile(path, total: int) -> None:
    path.write_text(f"events: Ir\nsummary: {total}\ntotals: {total}\n")


def test_the_per_inference_cost_is_the_difference_of_the_two_loops(tmp_path):
    dumps = tmp_path / "callgrind.out"
    _profile(tmp_path / "callgrind.out.5", 1000 + 20 * 300)
    _profile(tmp_path / "callgrind.out.6", 1000 + 40 * 300)
    model = {"path": "m.tflite", "parts": [4, 5, 6]}
    counted = instructions._per_inference(model, str(dumps), 40, "valgrind")
    assert counted == Instructions(
        per_inference=300.0, runs=40, overhead=1000, tool="valgrind", scope=instructions.SCOPE
    )


@pytest.mark.parametrize("parts", [[4, 6, 7], [None, None, None], [4, 5, 5]])
def test_profiles_not_one_per_loop_are_refused(tmp_path, parts):
    with pytest.raises(EdgesmithError, match="not one per counted loop"):
        instructions._per_inference({"path": "m", "parts": parts}, str(tmp_path / "x"), 40, "v")


def test_a_profile_without_a_total_is_one_line(tmp_path):
    (tmp_path / "x.2").write_text("events: Ir\n")
    _profile(tmp_path / "x.3", 10)
    with pytest.raises(EdgesmithError, match="no instruction total in x.2"):
        instructions._per_inference({"path": "m", "parts": [1, 2, 3]}, str(tmp_path / "x"), 4, "v")


@needs_valgrind
@pytest.mark.slow
def test_a_count_is_the_same_in_two_processes_and_lands_in_the_document(fixtures, tmp_path):
    model = fixtures / "int8.tflite"
    out = tmp_path / "bench.json"
    quick = ["--min-runs", "2", "--min-seconds", "0"]
    code = main(["bench", str(model), "--data", "digits", "--quiet", *quick, "--measure",
                 "instructions", "--json-out", str(out)])  # fmt: skip
    assert code == 0
    recorded = read_document(out).results[0].instructions
    assert recorded is not None and recorded.runs == 40 and "callgrind" in recorded.tool
    assert json.loads(out.read_text())["results"][0]["instructions"]["scope"] == (
        instructions.SCOPE
    )
    (again,) = instructions.count_instructions([model], BenchConfig(timing=QUICK), data="digits")
    # the tiny fixture runs some 36 thousand instructions per inference on x86-64
    assert 1_000 < recorded.per_inference < 10_000_000
    assert again.per_inference == pytest.approx(recorded.per_inference, rel=1e-3)
