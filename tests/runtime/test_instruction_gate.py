"""``check --measure instructions``: the gate on instructions per inference.

The verdict logic runs on counts given by hand (``count_instructions`` replaced), so these tests
decide the same on every machine; one slow test counts for real under valgrind.
"""

from __future__ import annotations

import json
import shutil

import pytest

from edgesmith.app.cli import main
from edgesmith.runtime import instructions
from edgesmith.runtime.bench import BenchConfig, benchmark
from edgesmith.runtime.bench_schema import Instructions
from edgesmith.runtime.regression import CheckOptions, Status, check
from edgesmith.runtime.timing import TimingPlan

QUICK = TimingPlan(min_runs=2, min_seconds=0.0, warmup_runs=1, warmup_seconds=0.0)
FAST = ["--min-runs", "2", "--min-seconds", "0", "--quiet", "--no-accuracy"]


def counted(per_inference: float) -> Instructions:
    return Instructions(per_inference=per_inference, runs=40, overhead=0, tool="test")


@pytest.fixture
def baseline(tmp_path, fixtures):
    """A bench document of float.tflite, its store beside it, with a stored count of 1000."""
    model = tmp_path / "model.tflite"
    shutil.copyfile(fixtures / "float.tflite", model)
    document = benchmark([model], config=BenchConfig(timing=QUICK)).document
    record = document.to_dict()
    record["results"][0]["instructions"] = counted(1000.0).to_dict()
    record["store"] = "baseline.models"
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(record))
    store = tmp_path / "baseline.models"
    store.mkdir()
    shutil.copyfile(model, store / f"{document.results[0].sha256}.tflite")
    return path


@pytest.fixture
def counts(monkeypatch):
    """Replace the valgrind count with one per file name; records what was counted."""
    table: dict[str, float] = {}
    seen: list[tuple[list[str], int | None]] = []

    def fake(paths, config, *, data=None, runs=40, report=None):
        seen.append(([str(p) for p in paths], config.threads))
        return [counted(table[str(p).rsplit("/", 1)[-1].split(".")[0]]) for p in paths]

    monkeypatch.setattr(instructions, "count_instructions", fake)
    monkeypatch.setattr(instructions, "valgrind_path", lambda: "/usr/bin/valgrind")
    return table, seen


@pytest.mark.parametrize(
    ("candidate", "status"), [(1020.0, Status.OK), (1021.0, Status.REGRESSION)]
)
def test_the_limit_is_the_ratio_of_the_two_counts(baseline, fixtures, counts, candidate, status):
    table, seen = counts
    sha = json.loads(baseline.read_text())["results"][0]["sha256"]
    table.update(int8=candidate, **{sha: 1000.0})
    (verdict,) = check(
        [fixtures / "int8.tflite"],
        baseline,
        CheckOptions(measure="instructions", skip_accuracy=True),
    )
    assert verdict.mode == "counted" and verdict.latency_status is status
    assert verdict.instructions.ratio == pytest.approx(candidate / 1000.0)
    assert verdict.latency is None  # nothing was timed
    assert seen[0][1] == 1 and seen[0][0][1].endswith(f"{sha}.tflite")  # the stored reference
    assert verdict.ok is (status is Status.OK)
    assert "allowed <= 1.02" in verdict.text() and "like with like" in verdict.text()


def test_without_the_reference_file_the_stored_count_decides(baseline, fixtures, counts):
    table, seen = counts
    shutil.rmtree(baseline.parent / "baseline.models")
    (baseline.parent / "model.tflite").unlink()
    table["int8"] = 1100.0
    (verdict,) = check(
        [fixtures / "int8.tflite"], baseline, measure="instructions", skip_accuracy=True
    )
    assert verdict.latency_status is Status.REGRESSION and verdict.regressed
    assert verdict.instructions.reference == counted(1000.0)
    assert len(seen[0][0]) == 1  # only the candidate was counted
    assert any("stored count" in note for note in verdict.notes)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["results"][0].pop("instructions"), "the baseline holds no count"),
        (lambda d: d["machine"].update(cpu="Another CPU"), "count is from another machine"),
    ],
)
def test_a_count_that_cannot_be_compared_is_skipped(baseline, fixtures, counts, change, reason):
    table, _ = counts
    shutil.rmtree(baseline.parent / "baseline.models")
    (baseline.parent / "model.tflite").unlink()
    document = json.loads(baseline.read_text())
    change(document)
    baseline.write_text(json.dumps(document))
    table["int8"] = 1000.0
    (verdict,) = check(
        [fixtures / "int8.tflite"], baseline, measure="instructions", skip_accuracy=True
    )
    assert verdict.latency_status is Status.SKIPPED and reason in verdict.latency_reason
    assert not verdict.ok and not verdict.regressed


def test_the_cli_exits_1_on_more_instructions_and_says_why(baseline, fixtures, counts, capsys):
    table, _ = counts
    sha = json.loads(baseline.read_text())["results"][0]["sha256"]
    table.update(int8=1050.0, **{sha: 1000.0})
    code = main(["check", str(fixtures / "int8.tflite"), "--baseline", str(baseline), *FAST,
                 "--measure", "instructions", "--max-increase", "1.04"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("FAIL")
    assert "instructions per inference 1,050 vs 1,000 (ratio 1.0500), allowed <= 1.04" in out


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--max-increase", "0.9"], "--max-increase"),
        (["--measure", "cycles"], "measure must be one of latency, instructions"),
    ],
)
def test_bad_gate_settings_exit_2(baseline, fixtures, capsys, extra, match):
    code = main(["check", str(fixtures / "int8.tflite"), "--baseline", str(baseline), *FAST,
                 *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and match in err and err.count("\n") == 1


def test_no_valgrind_is_said_before_any_model_loads(baseline, fixtures, monkeypatch, capsys):
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    code = main(["check", str(fixtures / "int8.tflite"), "--baseline", str(baseline), *FAST,
                 "--measure", "instructions"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "apt-get install valgrind" in err and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_a_real_count_catches_a_costlier_file_and_passes_the_same_one(tmp_path, fixtures, capsys):
    """float.tflite runs about 24 thousand instructions per inference, int8.tflite about 36."""
    model = tmp_path / "model.tflite"
    shutil.copyfile(fixtures / "float.tflite", model)
    base = tmp_path / "base.json"
    assert main(["bench", str(model), *FAST[:-1], "--measure", "instructions",
                 "--json-out", str(base)]) == 0  # fmt: skip
    shutil.copyfile(fixtures / "int8.tflite", model)  # replaced in place: the store keeps the old
    code = main(["check", str(model), "--baseline", str(base), *FAST, "--measure",
                 "instructions"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1 and "instructions per inference" in out
    ratio = float(out.split("(ratio ")[1].split(")")[0])
    assert 1.2 < ratio < 2.0
