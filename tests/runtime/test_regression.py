import json
import shutil
from pathlib import Path

import pytest

from edgesmith.app.cli import main
from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime import assert_no_regression
from edgesmith.runtime.bench import BenchConfig, benchmark, save_baseline
from edgesmith.runtime.bench_schema import parse_document
from edgesmith.runtime.machine import isa_class, same_machine
from edgesmith.runtime.regression import Status, check, match_entry, read_baseline

# Every latency in this file is read off a fake clock (fake_clock.py), never off this machine's CPU:
# the flags still ask for a short plan (0.1 s of fake time) and a 1.5x gate, but a verdict
# depends only on COST_MS. The gate's power and false-alarm rate on real timings, at check's
# defaults (5 s, 1.10x), are measured by bench/gates.py.
FAST = ["--min-runs", "40", "--min-seconds", "0.1", "--max-slowdown", "1.5", "--quiet"]
FIXTURES = Path(__file__).parent / "fixtures"
# What one inference of each fixture file costs on the fake clock: float.tflite is the fast
# file, raw.onnx the slow one (as on real CPUs, but here by decree).
COST_MS = {"int8.tflite": 1.0, "float.tflite": 0.4, "raw.onnx": 3.0}


def _plan():
    from edgesmith.runtime.timing import TimingPlan

    return TimingPlan(min_runs=40, min_seconds=0.1, warmup_runs=3, warmup_seconds=0.0, rounds=6)


@pytest.fixture(scope="module", autouse=True)
def fake_clock(fake_bench_clock):
    """Time ``bench`` and ``check`` on the fake clock of ``fake_clock.py``, by COST_MS.

    Two loads of the same 4 microsecond model have been seen to differ 2.3x on a loaded 2-core
    machine, which made these tests depend on chance. Here the real timing loop runs and every
    model's step really runs, but each run advances the clock by its file's COST_MS: paired
    ratios are the cost ratios, and a stored p50 is the cost the baseline's bench recorded.
    """
    with fake_bench_clock({FIXTURES / name: ms for name, ms in COST_MS.items()}) as clock:
        yield clock


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, fake_clock):
    """A bench document for int8.tflite with its store (``baseline.models/``) beside it."""
    root = tmp_path_factory.mktemp("baseline")
    model = root / "int8.tflite"
    shutil.copyfile(FIXTURES / "int8.tflite", model)
    run = benchmark([model], data="digits", config=BenchConfig(timing=_plan()))
    path = root / "baseline.json"
    save_baseline(run.document, path)
    return path


def edited(baseline, tmp_path, change, name="edited.json"):
    """A changed copy of the baseline, beside the original so that it shares the store."""
    document = json.loads(baseline.read_text())
    change(document)
    path = baseline.parent / name
    path.write_text(json.dumps(document))
    return path


def cli_check(candidate, baseline, *extra):
    return main(["check", str(candidate), "--baseline", str(baseline), *FAST, *extra])


def test_the_baseline_keeps_a_content_addressed_copy(baseline):
    document = json.loads(baseline.read_text())
    (record,) = document["results"]
    assert document["schema_version"] == 2 and document["store"] == "baseline.models"
    stored = baseline.parent / "baseline.models" / f"{record['sha256']}.tflite"
    assert stored.read_bytes() == (FIXTURES / "int8.tflite").read_bytes()


def test_the_same_model_passes_the_paired_gate(baseline, fixtures, capsys):
    assert cli_check(fixtures / "int8.tflite", baseline) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS") and "paired rounds" in out and "accuracy 9" in out


def test_in_place_replacement_is_compared_with_the_stored_original(tmp_path, capsys):
    """The README's device-CI flow: bench, replace the file in place, check the same path.

    The baseline is the fast file (float.tflite, 0.4 ms on the fake clock); the slower one
    (int8.tflite, 1.0 ms: a 2.5x ratio) replaces it.
    """
    model = tmp_path / "dir" / "model.tflite"
    model.parent.mkdir()
    shutil.copyfile(FIXTURES / "float.tflite", model)
    fast = ["--min-runs", "40", "--min-seconds", "0.1", "--warmup-seconds", "0", "--quiet"]
    base = tmp_path / "base.json"
    assert main(["bench", str(model), "--data", "digits", "--json-out", str(base), *fast]) == 0
    shutil.copyfile(FIXTURES / "int8.tflite", model)  # the slower file replaces it in place
    capsys.readouterr()
    assert cli_check(model, base, "--no-accuracy") == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and ": regression" in out and "paired rounds" in out
    assert "note: reference: " in out and "base.models" in out  # the stored original


def test_a_reference_whose_sha256_differs_is_never_used(tmp_path, capsys):
    model = tmp_path / "model.tflite"
    shutil.copyfile(FIXTURES / "float.tflite", model)
    run = benchmark([model], config=BenchConfig(timing=_plan()))
    base = tmp_path / "base.json"
    base.write_text(json.dumps(run.document.to_dict()))  # no store: only the recorded path
    shutil.copyfile(FIXTURES / "int8.tflite", model)
    (verdict,) = check([model], base, timing=_plan())
    assert verdict.mode == "stored" and not verdict.ok
    assert any("not used as the reference" in note for note in verdict.notes)
    assert cli_check(model, base) == 1  # regressed on stored numbers, or not compared: never 0
    assert capsys.readouterr().out.startswith("FAIL")


def test_an_accuracy_drop_fails_with_exit_1_in_points(baseline, fixtures, tmp_path, capsys):
    def better(document):
        document["results"][0]["accuracy"] = 0.999

    path = edited(baseline, tmp_path, better)
    code = cli_check(fixtures / "int8.tflite", path)
    captured = capsys.readouterr()
    assert code == 1
    assert "FAIL" in captured.out and "accuracy" in captured.out and "regression" in captured.out
    assert "1 of 1 model(s) regressed" in captured.err
    assert cli_check(fixtures / "int8.tflite", path, "--max-accuracy-drop", "0.5") == 1
    assert cli_check(fixtures / "int8.tflite", path, "--max-accuracy-drop", "30") == 0


@pytest.mark.parametrize("drop", ["-0.5", "100.5", "nan"])
def test_an_accuracy_drop_outside_0_to_100_points_exits_2(baseline, fixtures, capsys, drop):
    assert cli_check(fixtures / "int8.tflite", baseline, "--max-accuracy-drop", drop) == 2
    err = capsys.readouterr().err
    assert "--max-accuracy-drop" in err and err.count("\n") == 1


def test_without_the_reference_the_gate_fails_closed(baseline, fixtures, tmp_path, capsys):
    def gone(document):
        record = document["results"][0]
        record["model_file"] = record["path"] = str(tmp_path / "gone.tflite")
        record["sha256"] = "0" * 64  # not in the store either
        document["results"][0]["latency_ms"]["p50"] = record["latency_ms"]["p50"]

    path = edited(baseline, tmp_path, gone, "gone.json")
    (verdict,) = check([fixtures / "int8.tflite"], path, timing=_plan())
    assert verdict.mode == "stored" and verdict.latency_status is Status.UNVERIFIED
    assert not verdict.ok and not verdict.regressed
    # the text reads as before; the JSON carries the status's value with the reason beside it
    assert "allowed <= 1.10: unverified (stored numbers only)" in verdict.text()
    record = verdict.to_dict()
    assert record["latency_status"] == "unverified"
    assert record["latency_reason"] == "stored numbers only"
    assert cli_check(fixtures / "int8.tflite", path) == 1
    assert "could not be compared" in capsys.readouterr().err
    assert cli_check(fixtures / "int8.tflite", path, "--allow-skip") == 0
    assert "passed because --allow-skip" in capsys.readouterr().out


def test_stored_numbers_still_catch_a_regression(baseline, fixtures, tmp_path):
    def faster_and_gone(document):
        record = document["results"][0]
        record["model_file"] = record["path"] = str(tmp_path / "gone.tflite")
        record["sha256"] = "0" * 64
        for key in ("p50", "p90", "p99", "mean", "min", "max"):
            record["latency_ms"][key] /= 10.0  # the baseline claims 10x faster: a regression

    path = edited(baseline, tmp_path, faster_and_gone, "faster.json")
    (verdict,) = check([fixtures / "int8.tflite"], path, timing=_plan(), allow_skip=True)
    assert verdict.mode == "stored" and verdict.latency_status == "regression"
    assert verdict.latency.ratio > 1.5 and not verdict.ok


def test_a_baseline_from_another_machine_is_not_a_pass(baseline, fixtures, tmp_path, capsys):
    def elsewhere(document):
        document["machine"]["cpu"] = "Some Other CPU"
        record = document["results"][0]
        record["model_file"] = record["path"] = str(tmp_path / "gone.tflite")
        record["sha256"] = "0" * 64
        for key in ("p50", "p90", "p99", "mean", "min", "max"):
            record["latency_ms"][key] /= 10.0

    path = edited(baseline, tmp_path, elsewhere, "elsewhere.json")
    (verdict,) = check([fixtures / "int8.tflite"], path, timing=_plan())
    assert verdict.latency is None and verdict.latency_status.startswith("skipped")
    assert not verdict.ok and any("another machine" in note for note in verdict.notes)
    assert cli_check(fixtures / "int8.tflite", path) == 1
    assert cli_check(fixtures / "int8.tflite", path, "--allow-skip") == 0
    (forced,) = check([fixtures / "int8.tflite"], path, timing=_plan(), any_machine=True)
    assert forced.latency_status == "regression"


def test_another_machine_with_the_reference_at_hand_is_compared(baseline, fixtures, tmp_path):
    def elsewhere(document):
        document["machine"]["cpu"] = "Some Other CPU"

    path = edited(baseline, tmp_path, elsewhere, "elsewhere-paired.json")
    (verdict,) = check([fixtures / "int8.tflite"], path, timing=_plan(), max_slowdown=1.5)
    assert verdict.mode == "paired" and verdict.ok


def test_machine_identity_ignores_the_kernel_release_but_not_the_runtime():
    here = {
        "cpu": "Xeon",
        "isa": "x86-64-avx2",
        "cores": 2,
        "arch": "x86_64",
        "os": "Linux 6.1.0",
        "runtime_versions": {"ai-edge-litert": "1.0", "numpy": "2.0"},
    }
    kernel = {**here, "os": "Linux 6.18.44"}
    numpy = {**here, "runtime_versions": {"ai-edge-litert": "1.0", "numpy": "2.1"}}
    litert = {**here, "runtime_versions": {"ai-edge-litert": "1.1", "numpy": "2.0"}}
    assert same_machine(here, kernel) == [] and same_machine(here, numpy) == []
    assert same_machine(here, litert) == ["runtimes"]
    assert same_machine(here, {**here, "isa": "x86-64-avx512-vnni"}) == ["isa"]
    assert isa_class({"avx2", "avx512f", "avx512_vnni"}, "x86_64") == "x86-64-avx512-vnni"
    assert isa_class({"avx2", "fma"}, "x86_64") == "x86-64-avx2"
    assert isa_class({"asimd", "asimddp"}, "aarch64") == "arm64-dotprod"


def test_a_baseline_without_accuracy_fails_closed(baseline, fixtures, tmp_path, capsys):
    def no_accuracy(document):
        document["results"][0]["accuracy"] = None

    path = edited(baseline, tmp_path, no_accuracy, "no-accuracy.json")
    assert cli_check(fixtures / "int8.tflite", path) == 1
    assert "the baseline has no accuracy" in capsys.readouterr().out
    assert cli_check(fixtures / "int8.tflite", path, "--no-accuracy") == 0
    assert cli_check(fixtures / "int8.tflite", path, "--allow-skip") == 0


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda r, d: r["latency_ms"].update(p50=float("nan")), "not valid JSON"),
        (lambda r, d: r["latency_ms"].update(p50=-1.0), "latency_ms.p50 must be a finite"),
        (lambda r, d: r["latency_ms"].update(p50=1e9), "latency_ms.p50 must be a finite"),
        (lambda r, d: r["latency_ms"].update(p50=r["latency_ms"]["max"] * 2), "inconsistent"),
        (lambda r, d: r.update(accuracy=1.5), "accuracy must be a fraction in [0, 1]"),
        (lambda r, d: r.update(sha256="../../etc/passwd"), "sha256 must be 64 lowercase hex"),
        (lambda r, d: d.update(store="../elsewhere"), "store must be one folder name"),
        (lambda r, d: r.update(threads=0), "threads must be a whole number >= 1"),
        (lambda r, d: r.update(format="so"), "format must be one of tflite, onnx"),
    ],
)
def test_invalid_baseline_numbers_exit_2(baseline, fixtures, tmp_path, capsys, change, match):
    document = json.loads(baseline.read_text())
    change(document["results"][0], document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    assert cli_check(fixtures / "int8.tflite", path) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_delegate_in_the_baseline_is_never_loaded_from_the_file(baseline, fixtures, capsys):
    def delegate(document):
        document["settings"]["provider"] = "delegate:/tmp/evil.so"

    path = edited(baseline, baseline.parent, delegate, "delegate.json")
    assert cli_check(fixtures / "int8.tflite", path) == 2
    err = capsys.readouterr().err
    assert "loads native code" in err and "--provider delegate:/tmp/evil.so" in err
    # another provider given on the command line replaces the baseline's
    assert cli_check(fixtures / "int8.tflite", path, "--provider", "cpu") == 0


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "is not valid JSON"),
        ('{"schema_version": 1, "id": "x"}', "is not an edgesmith bench result"),
        ("[1, 2]", "is not an edgesmith bench result"),
        ('{"schema": "edgesmith.bench", "schema_version": 9, "results": []}', "schema_version 9"),
        ('{"schema": "edgesmith.bench", "schema_version": 2, "results": []}', "holds no per-model"),
        ("[" * 100000 + "]" * 100000, "is not valid JSON"),
    ],
)
def test_bad_baselines_exit_2(fixtures, tmp_path, capsys, content, match):
    path = tmp_path / "baseline.json"
    path.write_text(content)
    assert cli_check(fixtures / "int8.tflite", path) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_limits_and_missing_baseline(baseline, fixtures, tmp_path):
    with pytest.raises(EdgesmithError, match="max_slowdown must be a number >= 1"):
        check([fixtures / "int8.tflite"], baseline, max_slowdown=0.1)
    with pytest.raises(EdgesmithError, match=r"max_accuracy_drop must be in \[0.0, 100.0\]"):
        check([fixtures / "int8.tflite"], baseline, max_accuracy_drop=101)
    with pytest.raises(EdgesmithError, match="baseline not found"):
        read_baseline(tmp_path / "nope.json")


def test_candidates_are_matched_by_path_then_name(baseline):
    document = json.loads(baseline.read_text())
    record = document["results"][0]
    document["results"] = [{**record, "path": "a/x.tflite"}, {**record, "path": "b/y.tflite"}]
    parsed = parse_document(document)
    assert match_entry("b/y.tflite", parsed).path == "b/y.tflite"
    assert match_entry("new/x.tflite", parsed).path == "a/x.tflite"
    with pytest.raises(EdgesmithError, match="cannot tell which baseline result"):
        match_entry("z.tflite", parsed)


def test_a_baseline_moved_with_its_store_still_finds_the_reference(baseline, tmp_path, monkeypatch):
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copyfile(baseline, moved / "baseline.json")
    shutil.copytree(baseline.parent / "baseline.models", moved / "baseline.models")
    monkeypatch.chdir(tmp_path)
    (verdict,) = check([FIXTURES / "int8.tflite"], moved / "baseline.json", timing=_plan())
    assert verdict.mode == "paired"


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
            edited(baseline, tmp_path, better, "better.json"),
            min_runs=40,
            min_seconds=0.1,
        )


def test_latency_only_gate_and_json_verdicts(baseline, fixtures, tmp_path, capsys):
    def better(document):
        document["results"][0]["accuracy"] = 0.999
        document["data"] = "cifar10"  # not available here: --no-accuracy must not need it

    path = edited(baseline, tmp_path, better, "latency-only.json")
    out = tmp_path / "verdicts.json"
    assert cli_check(fixtures / "int8.tflite", path, "--no-accuracy", "--json-out", str(out)) == 0
    (record,) = json.loads(out.read_text())
    assert record["ok"] is True and record["accuracy_status"] == "not asked"
    assert record["latency"]["ratio"] > 0 and record["mode"] == "paired"
    assert record["max_accuracy_drop_points"] == 1.0
    capsys.readouterr()
    assert cli_check(fixtures / "int8.tflite", path, "--no-accuracy", "--json") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["ok"] is True and "PASS" in captured.err
    assert cli_check(fixtures / "int8.tflite", path, "--data", "digits") == 1
    assert "accuracy measured on digits; the baseline's was on cifar10" in capsys.readouterr().out


def test_paired_gate_through_the_cli_both_directions(fixtures, tmp_path, capsys):
    """raw.onnx costs 3x int8.tflite on the fake clock: slower fails, faster passes."""
    fast = ["--min-runs", "40", "--min-seconds", "0.1", "--warmup-seconds", "0", "--quiet"]
    for model in ("int8.tflite", "raw.onnx"):
        out = tmp_path / f"{model}.json"
        assert main(["bench", str(fixtures / model), "--json-out", str(out), *fast]) == 0
    capsys.readouterr()
    assert cli_check(fixtures / "raw.onnx", tmp_path / "int8.tflite.json", "--no-accuracy") == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and "paired rounds" in out and ": regression" in out
    assert cli_check(fixtures / "int8.tflite", tmp_path / "raw.onnx.json", "--no-accuracy") == 0
    assert capsys.readouterr().out.startswith("PASS")
