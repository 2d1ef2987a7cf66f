"""``check --emulate``: accuracy on the target's kernels gated, the emulated latency never judged.

The wiring tests replace the emulated bench with the native one (relabelled as qemu's would
be): what they check is what the gate decides from an emulated document, not qemu. The child
protocol itself is tested on this machine's Python (``test_child_session.py``), and the real
emulated runs need Debian's qemu-user-static (and an aarch64 env for aarch64): they skip with
that reason without it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from edgesmith.runtime import emulation
from edgesmith.runtime.bench import BenchConfig, benchmark, save_baseline
from edgesmith.runtime.emulated_check import NOT_JUDGED
from edgesmith.runtime.emulation import EMULATED_TIMING
from edgesmith.runtime.regression import CheckOptions, Status, check
from edgesmith.runtime.timing import TimingPlan

FIXTURES = Path(__file__).parent / "fixtures"
QUICK_PLAN = TimingPlan(min_runs=2, min_seconds=0.0, warmup_runs=1, warmup_seconds=0.0)
FAKE = emulation.Emulator(
    target="x86-64-avx2", argv=("qemu",), env={}, cpu="qemu-x86_64 test -cpu Haswell",
    isa="x86-64-avx2", arch="x86_64",
)  # fmt: skip


def one_line_error(err: str) -> str:
    assert err.startswith("edgesmith: error: ") and err.count("\n") == 1, err
    return err


def _m_tflite(tmp_path: Path, folder: str, fixture: str) -> Path:
    """The fixture ``fixture`` copied to ``folder/m.tflite``: same name, other content."""
    model = tmp_path / folder / "m.tflite"
    model.parent.mkdir()
    shutil.copyfile(FIXTURES / fixture, model)
    return model


@pytest.fixture
def baseline(tmp_path) -> Path:
    """A native bench of ``m.tflite`` (the int8 fixture) on digits, with its store."""
    model = _m_tflite(tmp_path, "base", "int8.tflite")
    run = benchmark([model], data="digits", config=BenchConfig(timing=QUICK_PLAN))
    save_baseline(run.document, model.parent / "bench.json")
    return model.parent / "bench.json"


@pytest.fixture
def candidate(tmp_path) -> Path:
    """Another file under the baseline's name: the float fixture as ``cand/m.tflite``."""
    return _m_tflite(tmp_path, "cand", "float.tflite")


@pytest.fixture
def fake_emulation(monkeypatch):
    """The emulated bench replaced by the native one, relabelled; ``calls`` records each.

    ``worse[sha256] = points`` lowers that file's accuracy and ``slower[sha256] = factor``
    multiplies its latency, as a target's kernels might.
    """
    state = {"calls": [], "worse": {}, "slower": {}}

    def emulated_benchmark(paths, *, target, data=None, config=None, report=None):
        state["calls"].append({"paths": list(paths), "target": target, "config": config})
        document = benchmark(paths, data=data, config=config).document
        results = []
        for result in document.results:
            if result.sha256 in state["worse"]:
                lowered = result.accuracy - state["worse"][result.sha256] / 100.0
                result = dataclasses.replace(result, accuracy=lowered)
            if result.sha256 in state["slower"]:
                factor = state["slower"][result.sha256]
                latency = result.latency
                scaled = {
                    f.name: getattr(latency, f.name) * factor
                    for f in dataclasses.fields(latency)
                    if f.name != "runs"
                }
                result = dataclasses.replace(result, latency=dataclasses.replace(latency, **scaled))
            results.append(result)
        return emulation.relabel(document.replace(results=tuple(results)), FAKE)

    monkeypatch.setattr(emulation, "emulated_benchmark", emulated_benchmark)
    monkeypatch.setattr(emulation, "emulator", lambda target, flag="--emulate": FAKE)
    return state


def sha256(path: Path) -> str:
    from edgesmith.core.artifacts import sha256_file

    return sha256_file(path)


# --- refusals: one line, exit 2, before anything is read or run ----------------------------


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--emulate", "arm"], "emulate must be one of x86-64-avx2, aarch64. Received: 'arm'"),
        (
            ["--emulate", "x86-64-avx2", "--measure", "instructions"],
            "--measure instructions counts on this machine with valgrind; drop --emulate",
        ),
        (["--emulate", "aarch64", "--no-accuracy"], "with --no-accuracy there is nothing"),
    ],
)
def test_emulate_refusals_are_one_line(run_cli, tmp_path, extra, match):
    code, _, err = run_cli(
        "check", FIXTURES / "int8.tflite", "--baseline", tmp_path / "none.json", *extra
    )
    assert code == 2
    assert match in one_line_error(err)


@pytest.mark.parametrize(
    ("target", "missing", "said"),
    [
        ("x86-64-avx2", "qemu", "apt-get install qemu-user-static"),
        ("aarch64", "env", "edgesmith device setup aarch64"),
    ],
)
def test_a_missing_emulator_is_named_before_the_baseline_is_read(
    run_cli, tmp_path, monkeypatch, target, missing, said
):
    if missing == "qemu":
        monkeypatch.setattr(emulation.shutil, "which", lambda name: None)
    else:
        monkeypatch.setenv(emulation.AARCH64_ENV_VARIABLE, str(tmp_path / "none"))
    code, _, err = run_cli(
        "check", FIXTURES / "int8.tflite", "--baseline", tmp_path / "missing.json",
        "--emulate", target,
    )  # fmt: skip
    assert code == 2
    assert said in one_line_error(err)


def test_the_option_refuses_the_same_combinations_in_the_api():
    from edgesmith.core.errors import EdgesmithError

    with pytest.raises(EdgesmithError, match="drop --emulate"):
        CheckOptions(emulate="aarch64", measure="instructions")
    with pytest.raises(EdgesmithError, match="emulate must be one of x86-64-avx2, aarch64"):
        CheckOptions(emulate="riscv64")


# --- what the gate decides from an emulated run ---------------------------------------------


def test_the_same_file_passes_on_accuracy_and_latency_is_not_judged(baseline, fake_emulation):
    model = baseline.parent / "m.tflite"
    (verdict,) = check([model], baseline, CheckOptions(emulate="x86-64-avx2"))
    assert verdict.ok and verdict.mode == "emulated"
    assert verdict.latency is None and verdict.latency_status is Status.NOT_ASKED
    assert verdict.latency_reason == NOT_JUDGED
    assert verdict.accuracy_status is Status.OK
    assert verdict.accuracy_percent == verdict.baseline_accuracy_percent
    assert verdict.emulation is not None and verdict.emulation.target == "x86-64-avx2"
    text = verdict.text()
    assert "emulated, not judged" in text and "emulator's wall-clock (not judged)" in text
    (call,) = fake_emulation["calls"]
    assert call["config"].emulate == "x86-64-avx2"
    assert call["config"].timing == EMULATED_TIMING  # brief: the latency is not judged
    assert len(call["paths"]) == 2  # the candidate and the baseline's stored file, one child


def test_an_emulated_accuracy_drop_fails_with_exit_1(run_cli, baseline, candidate, fake_emulation):
    fake_emulation["worse"][sha256(candidate)] = 5.0
    code, out, _ = run_cli(
        "check", candidate, "--baseline", baseline, "--emulate", "x86-64-avx2", "--quiet"
    )
    assert code == 1
    assert "FAIL" in out and "accuracy" in out and ": regression" in out


def test_a_far_slower_emulated_candidate_still_passes(baseline, candidate, fake_emulation):
    fake_emulation["slower"][sha256(candidate)] = 100.0
    (verdict,) = check([candidate], baseline, emulate="x86-64-avx2", max_slowdown=1.01)
    assert verdict.ok, verdict.text()
    assert any("--max-slowdown 1.01 is not applied" in note for note in verdict.notes)


def test_the_reference_is_measured_on_the_target_not_taken_from_the_baseline(
    baseline, fake_emulation
):
    model = baseline.parent / "m.tflite"
    fake_emulation["worse"][sha256(model)] = 3.0  # the target's kernels lose 3 points on both
    (verdict,) = check([model], baseline, emulate="x86-64-avx2")
    assert verdict.accuracy_status is Status.OK  # like with like: no drop on the target
    document = json.loads(baseline.read_text())
    native = 100.0 * document["results"][0]["accuracy"]
    assert verdict.baseline_accuracy_percent == pytest.approx(native - 3.0)


def test_without_the_reference_a_native_baseline_is_not_compared(
    baseline, candidate, fake_emulation
):
    shutil.rmtree(baseline.parent / "bench.models")
    (baseline.parent / "m.tflite").unlink()
    (verdict,) = check([candidate], baseline, emulate="x86-64-avx2")
    assert not verdict.ok and verdict.accuracy_status is Status.SKIPPED
    assert "not emulated x86-64-avx2" in verdict.accuracy_reason
    (passed,) = check([candidate], baseline, emulate="x86-64-avx2", allow_skip=True)
    assert passed.ok


def test_without_the_reference_an_emulated_baseline_of_the_same_target_stands_in(
    tmp_path, candidate, fake_emulation
):
    model = tmp_path / "gone" / "m.tflite"
    model.parent.mkdir()
    shutil.copyfile(FIXTURES / "int8.tflite", model)
    document = emulation.relabel(
        benchmark([model], data="digits", config=BenchConfig(timing=QUICK_PLAN)).document, FAKE
    )
    path = tmp_path / "emulated.json"
    path.write_text(json.dumps(document.to_dict()))
    model.unlink()  # no store, no file at the recorded path
    (verdict,) = check([candidate], path, emulate="x86-64-avx2")
    assert verdict.accuracy_status is not Status.SKIPPED
    assert verdict.baseline_accuracy_percent == pytest.approx(100.0 * document.results[0].accuracy)
    assert any("stored accuracy, measured on emulated x86-64-avx2" in n for n in verdict.notes)


def test_candidates_with_the_same_settings_share_one_emulated_child(
    baseline, candidate, fake_emulation
):
    model = baseline.parent / "m.tflite"
    verdicts = check([model, candidate], baseline, emulate="x86-64-avx2")
    assert len(verdicts) == 2
    (call,) = fake_emulation["calls"]
    assert len(call["paths"]) == 3  # two candidates and the one stored reference


def test_json_verdicts_carry_the_emulation_record(run_cli, baseline, fake_emulation):
    code, out, _ = run_cli(
        "check", baseline.parent / "m.tflite", "--baseline", baseline, "--emulate",
        "x86-64-avx2", "--json", "--quiet",
    )  # fmt: skip
    assert code == 0
    (record,) = json.loads(out)
    assert record["mode"] == "emulated" and record["latency_status"] == "not asked"
    assert record["emulation"]["target"] == "x86-64-avx2"


# --- real emulated runs ---------------------------------------------------------------------


@pytest.mark.emulated("x86-64-avx2")
@pytest.mark.slow
def test_a_real_emulated_check_passes_the_baseline_file(run_cli, baseline):
    code, out, _ = run_cli(
        "check", baseline.parent / "m.tflite", "--baseline", baseline, "--emulate",
        "x86-64-avx2", "--quiet",
    )  # fmt: skip
    assert code == 0, out
    assert "run on emulated x86-64-avx2" in out and "emulated, not judged" in out


@pytest.mark.emulated("aarch64")
@pytest.mark.slow
def test_a_real_aarch64_check_measures_both_files_on_arm_kernels(baseline):
    (verdict,) = check([baseline.parent / "m.tflite"], baseline, emulate="aarch64")
    assert verdict.ok, verdict.text()
    assert verdict.emulation.target == "aarch64" and "cortex-a72" in verdict.emulation.emulator
    assert verdict.accuracy_percent == verdict.baseline_accuracy_percent  # one file, one kernel
