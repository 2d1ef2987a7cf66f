"""``export --check-on``: a file that passed parity here is checked again on emulated CPUs.

The decision and the refusals need no TensorFlow; the wiring tests export the small logits model
with the emulated session replaced by one that runs the file natively (optionally breaking its
outputs, as a target's kernels might): what they check is what the export does with emulated
outputs, one child per target for all files. The real runs need Debian's qemu-user-static (and
an aarch64 env for aarch64) and skip with that reason without it.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from edgesmith.core.errors import CheckFailed, EdgesmithError
from edgesmith.core.manifest import EmulatedParity, Metrics
from edgesmith.export.emulated_parity import emulated_record, merge
from edgesmith.export.formats import FORMATS
from edgesmith.export.options import ExportOptions
from edgesmith.export.parity import ParityCheck
from edgesmith.runtime import emulation

QUIET = {"report": lambda line: None}
INT8 = ParityCheck(FORMATS["tflite-int8"].tolerance, "probabilities")


def outputs_for(labels: np.ndarray, wrong: int, classes: int = 4) -> np.ndarray:
    """One-hot-ish outputs right on every image but the first ``wrong``."""
    predicted = labels.copy()
    predicted[:wrong] = (predicted[:wrong] + 1) % classes
    outputs = np.full((len(labels), classes), 0.01, dtype=np.float32)
    outputs[np.arange(len(labels)), predicted] = 0.97
    return outputs


# --- the decision: the native parity rule on the target's outputs ---------------------------


def test_the_same_outputs_pass_and_agree_with_the_native_file():
    labels = np.arange(400) % 4
    source = outputs_for(labels, 10)
    record = emulated_record(
        "aarch64", "qemu test", "litert/xnnpack", source.copy(), source, source, labels, INT8,
    )  # fmt: skip
    assert record["parity"] == "pass" and record["agreement_native"] == 1.0
    assert record["max_abs_diff_native"] == 0.0 and "parity_failures" not in record
    EmulatedParity.from_dict(record)  # the manifest's record takes it as it is


def test_a_drop_beyond_the_tolerance_on_the_target_fails_like_a_native_one():
    labels = np.arange(400) % 4
    source = outputs_for(labels, 10)
    there = outputs_for(labels, 60)  # 12.5 points below the source on the target's kernels
    record = emulated_record(
        "aarch64", "qemu test", "litert/xnnpack", there, source, source, labels, INT8,
    )  # fmt: skip
    assert record["parity"] == "fail"
    assert record["accuracy_test"]["verdict"] == "fail"
    metrics = {"parity": "pass", "accuracy": 0.975}
    merge(metrics, [record])
    assert metrics["parity"] == "fail"
    assert metrics["parity_failures"][0].startswith("on emulated aarch64: accuracy 12.50 points")
    Metrics.from_dict(metrics)  # and the manifest's metrics take the merged record


def test_a_small_drop_within_the_tolerance_passes():
    labels = np.arange(400) % 4
    source = outputs_for(labels, 10)
    there = outputs_for(labels, 12)  # half a point below
    record = emulated_record(
        "x86-64-avx2", "qemu test", "onnxruntime/cpu", there, source, source, labels, INT8,
    )  # fmt: skip
    assert record["parity"] == "pass" and record["agreement_native"] < 1.0


# --- refusals: one line, exit 2, before anything is converted -------------------------------


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"check_on": "arm"}, "check_on must be one of x86-64-avx2, aarch64. Received: 'arm'"),
        ({"check_on": "aarch64,aarch64"}, "--check-on names a target twice"),
        ({"check_on": "aarch64", "target": "tflm"}, "a --target tflm file runs on a micro"),
    ],
)
def test_bad_check_on_values_are_refused(values, match):
    with pytest.raises(EdgesmithError, match=match):
        ExportOptions.from_dict(values)


def test_check_on_takes_a_comma_list():
    assert ExportOptions(check_on="aarch64, x86-64-avx2").check_on == ("aarch64", "x86-64-avx2")
    assert ExportOptions(check_on="aarch64", target="int8-only").check_on == ("aarch64",)


def test_a_bad_target_on_the_command_line_is_one_line(run_cli, tmp_path):
    code, _, err = run_cli(
        "export", "--from", tmp_path, "--format", "tflite-int8", "--check-on", "riscv",
        "--out", tmp_path / "x",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert "--check-on" in err and "x86-64-avx2, aarch64" in err


@pytest.fixture
def no_conversion(monkeypatch):
    """A source that needs no model file, and a conversion that fails the test if it starts."""
    from edgesmith.export import exporter

    source = types.SimpleNamespace(qat=False, artifact=types.SimpleNamespace(path="src"))
    monkeypatch.setattr(exporter, "read_source", lambda path: source)

    def converting(*args, **kwargs):
        raise AssertionError("the conversion started")

    monkeypatch.setattr(exporter, "_run", converting)


def test_a_missing_qemu_is_named_before_the_conversion(no_conversion, tmp_path, monkeypatch):
    from edgesmith.export import export_formats

    monkeypatch.setattr(emulation.shutil, "which", lambda name: None)
    with pytest.raises(EdgesmithError, match="--check-on needs qemu-x86_64-static.*apt-get") as e:
        export_formats("src", "tflite-int8", tmp_path / "x", check_on="x86-64-avx2", **QUIET)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "x").exists()


def test_a_missing_aarch64_env_is_named_before_the_conversion(no_conversion, tmp_path, monkeypatch):
    from edgesmith.export import export_formats

    monkeypatch.setenv(emulation.AARCH64_ENV_VARIABLE, str(tmp_path / "none"))
    with pytest.raises(EdgesmithError, match="--check-on aarch64 needs an aarch64 environment"):
        export_formats("src", "tflite-int8", tmp_path / "x", check_on="aarch64", **QUIET)


# --- wiring: one emulated child per target for every file -----------------------------------


class FakeSession:
    """Stands in for ``EmulatedSession``: runs the file here; ``broken`` targets swap classes."""

    started: list[str] = []
    broken: set[str] = set()
    truncated: set[str] = set()

    def __init__(self, target, *, flag="--emulate", report=None):
        FakeSession.started.append(target)
        self.target = target
        self.emulator = types.SimpleNamespace(cpu=f"fake {target}")
        self.alive = True

    def predict(self, path, pixels, *, xnnpack=True, provider=None):
        from edgesmith.runtime import load

        model = load(path, xnnpack=xnnpack, provider=provider)
        try:
            outputs = np.asarray(model.predict(pixels), dtype=np.float32)
        finally:
            model.close()
        if self.target in FakeSession.broken:
            outputs = np.roll(outputs, 1, axis=1)  # every answer one class off
        if self.target in FakeSession.truncated:
            outputs = outputs[:-1]  # one image short: not comparable at all
        return emulation.EmulatedOutputs(outputs, model.runtime, model.provider_used)

    def close(self, *, kill=False):
        self.alive = False


@pytest.fixture
def fake_sessions(monkeypatch):
    import edgesmith.runtime as runtime

    FakeSession.started, FakeSession.broken, FakeSession.truncated = [], set(), set()
    monkeypatch.setattr(runtime, "EmulatedSession", FakeSession)
    monkeypatch.setattr(runtime, "check_emulators", lambda targets, flag="--emulate": None)
    return FakeSession


def test_every_file_is_checked_on_every_target_through_one_child_each(
    logits_artifact, tmp_path, fake_sessions, run_cli
):
    out = tmp_path / "x"
    code, stdout, _ = run_cli(
        "export", "--from", logits_artifact, "--format", "tflite-int8,tflite-fp32",
        "--check-on", "x86-64-avx2,aarch64", "--out", out, "--quiet",
    )  # fmt: skip
    assert code == 0, stdout
    assert fake_sessions.started == ["x86-64-avx2", "aarch64"]  # not one per file
    for name in ("tflite-int8", "tflite-fp32"):
        manifest = json.loads((out / name / "manifest.json").read_text())
        records = manifest["metrics"]["emulated"]
        assert [r["target"] for r in records] == ["x86-64-avx2", "aarch64"]
        assert all(r["parity"] == "pass" and r["agreement_native"] == 1.0 for r in records)
        assert records[0]["accuracy"] == manifest["metrics"]["accuracy"]
    assert "tflite-int8: emulated aarch64: accuracy" in stdout
    assert "emulated aarch64: fake aarch64" in stdout


def test_a_file_that_fails_on_a_target_is_not_published(logits_artifact, tmp_path, fake_sessions):
    from edgesmith.export import export

    fake_sessions.broken = {"aarch64"}
    with pytest.raises(CheckFailed, match="on emulated aarch64: ") as caught:
        export(logits_artifact, "tflite-int8", tmp_path / "x", check_on="aarch64", **QUIET)
    assert not (tmp_path / "x" / "tflite-int8").exists()
    (result,) = caught.value.results
    assert result.metrics.parity == "fail" and result.metrics.emulated[0].parity == "fail"


def export_allowing_mismatch(source, out, check_on: str):
    """``export --format tflite-int8 --check-on CHECK_ON --allow-mismatch``: its one artifact."""
    from edgesmith.export import export

    (artifact,) = export(
        source, "tflite-int8", out, check_on=check_on, allow_mismatch=True, **QUIET
    )
    return artifact


def test_outputs_shaped_unlike_the_native_ones_fail_that_file_not_the_export(
    logits_artifact, tmp_path, fake_sessions
):
    fake_sessions.truncated = {"aarch64"}
    artifact = export_allowing_mismatch(logits_artifact, tmp_path / "x", "aarch64")
    (record,) = artifact.metrics.emulated
    assert record.parity == "fail"
    assert "cannot run there: on emulated aarch64 the file output" in record.parity_failures[0]


def test_allow_mismatch_publishes_it_with_the_failure_recorded(
    logits_artifact, tmp_path, fake_sessions
):
    from edgesmith.core.artifacts import read_artifact

    fake_sessions.broken = {"aarch64"}
    artifact = export_allowing_mismatch(logits_artifact, tmp_path / "x", "aarch64,x86-64-avx2")
    metrics = read_artifact(artifact.path).metrics
    assert metrics.parity == "fail"
    assert [(r.target, r.parity) for r in metrics.emulated] == [
        ("aarch64", "fail"),
        ("x86-64-avx2", "pass"),
    ]


# --- real emulated runs ---------------------------------------------------------------------


@pytest.mark.emulated("x86-64-avx2")
def test_a_real_check_on_x86_64_avx2_records_the_targets_accuracy(logits_artifact, tmp_path):
    from edgesmith.export import export

    files = export(
        logits_artifact, "tflite-int8,onnx-int8", tmp_path / "x", check_on="x86-64-avx2", **QUIET
    )
    for artifact in files:
        (record,) = artifact.manifest.metrics.emulated
        assert record.target == "x86-64-avx2" and "Haswell" in record.emulator
        assert record.parity == "pass" and record.num_eval == artifact.manifest.metrics.num_eval


@pytest.mark.emulated("aarch64")
def test_a_real_check_on_aarch64_runs_the_arm_kernels(logits_artifact, tmp_path):
    from edgesmith.export import export

    (artifact,) = export(
        logits_artifact, "tflite-int8", tmp_path / "x", check_on="aarch64", **QUIET
    )
    (record,) = artifact.manifest.metrics.emulated
    assert record.target == "aarch64" and "cortex-a72" in record.emulator
    assert record.parity == "pass" and record.runtime.startswith("litert/")
