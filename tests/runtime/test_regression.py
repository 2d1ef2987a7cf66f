import json
import shutil

import pytest

from edgesmith.app.cli import main
from edgesmith.errors import EdgesmithError
from edgesmith.runtime import assert_no_regression
from edgesmith.runtime.bench import BenchConfig, benchmark
from edgesmith.runtime.regression import check, match_entry, read_baseline

# Unit tests time for 0.1 s on a shared machine, where bursts of other work can shift a few
# milliseconds of one model's runs by 10%: they gate at 1.5x. The gate's power and false-alarm
# rate at check's defaults (5 s, 1.10x) are measured by bench/regression_gate.py.
FAST = ["--min-runs", "40", "--min-seconds", "0.1", "--max-slowdown", "1.5", "--quiet"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """A bench document for int8.tflite, with the model copied beside it."""
    from edgesmith.runtime.timing import TimingPlan

    root = tmp_path_factory.mktemp("baseline")
    model = root / "int8.tflite"
    shutil.copyfile(__import__("pathlib").Path(__file__).parent / "fixtures" / "int8.tflite", model)
    plan = TimingPlan(min_runs=40, min_seconds=0.1, warmup_runs=3, warmup_seconds=0.0, rounds=6)
    run = benchmark([model], data="digits", config=BenchConfig(timing=plan))
    path = root / "baseline.json"
    path.write_text(json.dumps(run.document))
    return path


def edited(baseline, tmp_path, change):
    document = json.loads(baseline.read_text())
    change(document)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    return path


def test_the_same_model_passes_the_paired_gate(baseline, fixtures, capsys):
    assert main(["check", str(fixtures / "int8.tflite"), "--baseline", str(baseline), *FAST]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS") and "paired rounds" in out and "accuracy 9" in out


def test_an_accuracy_drop_fails_with_exit_1(baseline, fixtures, tmp_path, capsys):
    def better(document):
        document["results"][0]["accuracy"] = 0.99

    path = edited(baseline, tmp_path, better)
    code = main(["check", str(fixtures / "int8.tflite"), "--baseline", str(path), *FAST])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAIL" in captured.out and "accuracy" in captured.out and "regression" in captured.out
    assert "1 of 1 model(s) regressed" in captured.err
    looser = ["--max-accuracy-drop", "0.2"]
    assert (
        main(["check", str(fixtures / "int8.tflite"), "--baseline", str(path), *FAST, *looser]) == 0
    )


def test_stored_numbers_gate_both_ways_when_the_reference_is_gone(baseline, fixtures, tmp_path):
    def faster_and_gone(document):
        record = document["results"][0]
        record["model_file"] = record["path"] = str(tmp_path / "gone.tflite")
        record["latency_ms"]["p50"] /= 10.0  # the baseline claims 10x faster: a regression

    slow = edited(baseline, tmp_path, faster_and_gone)
    verdicts = check([fixtures / "int8.tflite"], slow, plan=_plan())
    (verdict,) = verdicts
    assert verdict.mode == "stored" and verdict.latency_status == "regression"
    assert verdict.latency.ratio > 1.5 and not verdict.ok

    def slower_and_gone(document):
        record = document["results"][0]
        record["model_file"] = record["path"] = str(tmp_path / "gone.tflite")
        record["latency_ms"]["p50"] *= 10.0

    fast = edited(baseline, tmp_path, slower_and_gone)
    (verdict,) = check([fixtures / "int8.tflite"], fast, plan=_plan())
    assert verdict.ok and verdict.latency.ratio < 0.67
    assert any("not at hand" in note for note in verdict.notes)


def test_a_baseline_from_another_machine_is_flagged(baseline, fixtures, tmp_path):
    def elsewhere(document):
        document["machine"]["cpu"] = "Some Other CPU"
        record = document["results"][0]
        record["model_file"] = record["path"] = str(tmp_path / "gone.tflite")
        record["latency_ms"]["p50"] /= 10.0

    path = edited(baseline, tmp_path, elsewhere)
    (verdict,) = check([fixtures / "int8.tflite"], path, plan=_plan())
    assert verdict.latency is None and verdict.latency_status.startswith("skipped")
    assert verdict.ok and any("another machine" in note for note in verdict.notes)
    (forced,) = check([fixtures / "int8.tflite"], path, plan=_plan(), any_machine=True)
    assert forced.latency_status == "regression"


def test_assert_no_regression_for_users_test_suites(baseline, fixtures, tmp_path):
    verdicts = assert_no_regression(
        fixtures / "int8.tflite", baseline, max_slowdown=1.5, min_runs=40, min_seconds=0.1
    )
    assert verdicts[0].ok

    def better(document):
        document["results"][0]["accuracy"] = 0.999

    with pytest.raises(AssertionError, match=r"FAIL .*\n.*\n  accuracy .* regression"):
        assert_no_regression(
            fixtures / "int8.tflite",
            edited(baseline, tmp_path, better),
            min_runs=40,
            min_seconds=0.1,
        )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "is not valid JSON"),
        ('{"schema_version": 1, "id": "x"}', "is not an edgesmith bench result"),
        ("[1, 2]", "is not an edgesmith bench result"),
        ('{"schema": "edgesmith.bench", "schema_version": 9, "results": []}', "schema_version 9"),
        ('{"schema": "edgesmith.bench", "schema_version": 1, "results": []}', "holds no per-model"),
    ],
)
def test_bad_baselines_exit_2(fixtures, tmp_path, capsys, content, match):
    path = tmp_path / "baseline.json"
    path.write_text(content)
    assert main(["check", str(fixtures / "int8.tflite"), "--baseline", str(path), *FAST]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_limits_and_missing_baseline(baseline, fixtures, tmp_path):
    with pytest.raises(EdgesmithError, match="max_slowdown is a latency ratio >= 1.0"):
        check([fixtures / "int8.tflite"], baseline, max_slowdown=0.1)
    with pytest.raises(EdgesmithError, match=r"max_accuracy_drop is a fraction in \[0, 1\)"):
        check([fixtures / "int8.tflite"], baseline, max_accuracy_drop=5)
    with pytest.raises(EdgesmithError, match="baseline not found"):
        read_baseline(tmp_path / "nope.json")


def test_candidates_are_matched_by_path_then_name():
    document = {"results": [{"path": "a/x.tflite"}, {"path": "b/y.onnx"}]}
    assert match_entry("b/y.onnx", document)["path"] == "b/y.onnx"
    assert match_entry("new/x.tflite", document)["path"] == "a/x.tflite"
    with pytest.raises(EdgesmithError, match="cannot tell which baseline result"):
        match_entry("z.tflite", document)


def _plan():
    from edgesmith.runtime.timing import TimingPlan

    return TimingPlan(min_runs=40, min_seconds=0.1, warmup_runs=3, warmup_seconds=0.0, rounds=6)


def test_a_relative_reference_is_found_beside_the_baseline(
    baseline, fixtures, tmp_path, monkeypatch
):
    def relative(document):
        record = document["results"][0]
        record["model_file"] = record["path"] = "int8.tflite"

    path = baseline.parent / "relative.json"
    path.write_text(json.dumps(json.loads(edited(baseline, tmp_path, relative).read_text())))
    monkeypatch.chdir(tmp_path)  # the relative path does not resolve from here
    (verdict,) = check([fixtures / "int8.tflite"], path, plan=_plan())
    assert verdict.mode == "paired"


def test_latency_only_gate_and_json_verdicts(baseline, fixtures, tmp_path, capsys):
    def better(document):
        document["results"][0]["accuracy"] = 0.999
        document["data"] = "cifar10"  # not available here: --no-accuracy must not need it

    path = edited(baseline, tmp_path, better)
    out = tmp_path / "verdicts.json"
    args = ["check", str(fixtures / "int8.tflite"), "--baseline", str(path), *FAST]
    assert main([*args, "--no-accuracy", "--json", str(out)]) == 0
    (record,) = json.loads(out.read_text())
    assert record["ok"] is True and record["accuracy_status"] == "skipped"
    assert record["latency"]["ratio"] > 0 and record["mode"] == "paired"
    assert main([*args, "--data", "digits"]) == 1  # the edited accuracy is out of reach
    assert "accuracy measured on digits; the baseline's was on cifar10" in capsys.readouterr().out


def test_paired_gate_through_the_cli_both_directions(fixtures, tmp_path, capsys):
    """raw.onnx takes about 6x the time of int8.tflite here: slower fails, faster passes."""
    fast = ["--min-runs", "40", "--min-seconds", "0.1", "--warmup-seconds", "0", "--quiet"]
    for model in ("int8.tflite", "raw.onnx"):
        out = tmp_path / f"{model}.json"
        assert main(["bench", str(fixtures / model), "--json", str(out), *fast]) == 0
    capsys.readouterr()
    slower = ["check", str(fixtures / "raw.onnx"), "--baseline", str(tmp_path / "int8.tflite.json")]
    assert main([*slower, *FAST]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and "paired rounds" in out and ": regression" in out
    faster = ["check", str(fixtures / "int8.tflite"), "--baseline", str(tmp_path / "raw.onnx.json")]
    assert main([*faster, *FAST]) == 0
    assert capsys.readouterr().out.startswith("PASS")
