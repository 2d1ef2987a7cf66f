"""Bench on an emulated CPU: the target's kernels, the host's process, a labelled document.

The emulated runs need Debian's qemu-user-static and skip with that reason without it; the
refusals and the relabelling need nothing.
"""

from __future__ import annotations

import sys

import pytest

from edgesmith.app.cli import main
from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime import emulation
from edgesmith.runtime.bench_schema import parse_document
from edgesmith.runtime.child import run_job

QUICK = ["--min-runs", "2", "--min-seconds", "0", "--warmup-runs", "1"]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--emulate", "arm"], "emulate must be one of x86-64-avx2, aarch64. Received: 'arm'"),
        (["--emulate", "x86-64-avx2", "--device", "cpu-x86"], "--device does not apply"),
        (["--emulate", "x86-64-avx2", "--plots", "p"], "--plots does not apply"),
        (
            ["--emulate", "x86-64-avx2", "--measure", "instructions"],
            "counts on this machine with valgrind",
        ),
    ],
)
def test_emulate_refusals_are_one_line(fixtures, one_line_error, extra, match):
    assert main(["bench", str(fixtures / "int8.tflite"), "--quiet", *extra]) == 2
    assert match in one_line_error()


def test_a_missing_qemu_names_the_debian_package(monkeypatch):
    monkeypatch.setattr(emulation.shutil, "which", lambda name: None)
    with pytest.raises(EdgesmithError, match="apt-get install qemu-user-static"):
        emulation.emulator("x86-64-avx2")


def test_the_relabelled_document_names_the_target_not_the_host(fixtures):
    from edgesmith.runtime.bench import BenchConfig, benchmark
    from edgesmith.runtime.timing import TimingPlan

    config = BenchConfig(timing=TimingPlan(min_runs=2, min_seconds=0.0, warmup_runs=1))
    document = benchmark([fixtures / "int8.tflite"], config=config).document
    chosen = emulation.Emulator(
        target="x86-64-avx2", argv=("qemu",), env={}, cpu="qemu Haswell", isa="x86-64-avx2",
        arch="x86_64",
    )  # fmt: skip
    labelled = emulation.relabel(document, chosen)
    assert labelled.emulation.target == "x86-64-avx2"
    assert labelled.emulation.note == emulation.LATENCY_NOTE
    assert labelled.machine.cpu == "qemu Haswell" and labelled.results[0].machine.cpu == (
        "qemu Haswell"
    )
    assert labelled.machine.cores == document.machine.cores  # only the CPU's names change
    assert parse_document(labelled.to_dict()) == labelled


def test_a_childs_own_error_comes_back_as_its_one_line(tmp_path):
    request = {"job": "bench", "paths": [str(tmp_path / "missing.tflite")], "config": {}}
    with pytest.raises(EdgesmithError) as caught:
        run_job([sys.executable], request, label="child", timeout=120)
    message = str(caught.value)
    assert "model not found" in message and "missing.tflite" in message
    assert "\n" not in message and not message.startswith("edgesmith:")


def test_an_unknown_job_is_refused_by_the_child():
    with pytest.raises(EdgesmithError, match="unknown job 'train'"):
        run_job([sys.executable], {"job": "train"}, label="child", timeout=120)


def test_a_child_that_cannot_start_is_one_line(tmp_path):
    with pytest.raises(EdgesmithError, match="cannot start emulated x: .*nope"):
        run_job([str(tmp_path / "nope")], {"job": "bench"}, label="emulated x", timeout=10)


def test_a_child_past_its_time_is_stopped(tmp_path):
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text("import time\ntime.sleep(60)\n")
    with pytest.raises(EdgesmithError, match="took over 0.5 s and was stopped"):
        run_job([sys.executable, str(sleeper)], {"job": "bench"}, label="child", timeout=0.5)


@pytest.mark.emulated("x86-64-avx2")
@pytest.mark.slow
def test_an_emulated_bench_gives_the_native_accuracy_and_says_it_is_emulated(
    fixtures, tmp_path, capsys
):
    paths = [str(fixtures / "int8.tflite"), str(fixtures / "int8_io.onnx")]
    native, emulated = tmp_path / "native.json", tmp_path / "emulated.json"
    assert main(["bench", *paths, "--data", "digits", "--quiet", *QUICK, "--json-out",
                 str(native)]) == 0  # fmt: skip
    assert main(["bench", *paths, "--data", "digits", "--quiet", "--emulate", "x86-64-avx2",
                 "--json-out", str(emulated)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "-cpu Haswell (AVX2, no VNNI)" in out and "not the device's time" in out
    here, there = parse_document_file(native), parse_document_file(emulated)
    assert there.emulation is not None and there.emulation.target == "x86-64-avx2"
    assert there.machine.isa == "x86-64-avx2" and "Haswell" in there.machine.cpu
    assert there.settings.timing.min_runs == 5  # the brief default timing of an emulated run
    for mine, theirs in zip(here.results, there.results, strict=True):
        assert theirs.num_eval == mine.num_eval > 0
        assert theirs.accuracy == pytest.approx(mine.accuracy, abs=0.003)


def parse_document_file(path):
    from edgesmith.runtime.bench_schema import read_document

    return read_document(path)


def test_aarch64_without_an_env_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv(emulation.AARCH64_ENV_VARIABLE, str(tmp_path / "none"))
    with pytest.raises(EdgesmithError, match="edgesmith device setup aarch64 .*none"):
        emulation.emulator("aarch64")


def test_device_setup_refuses_a_folder_that_is_not_an_env(tmp_path, one_line_error):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["device", "setup", "aarch64", str(tmp_path)]) == 2
    one_line_error()
    assert (tmp_path / "notes.txt").read_text() == "mine"
