"""``build --check-on-emulated``: every candidate's export checked on the profile's emulated CPU.

The choice of target and the refusals need nothing; that the target reaches the export is
checked with the export replaced by a recorder (the export's own ``--check-on`` is tested in
``tests/export/test_emulated_parity.py``).
"""

from __future__ import annotations

import types

import pytest

from edgesmith.app.build.pipeline import emulated_targets
from edgesmith.core.profiles import load_profile
from edgesmith.runtime import emulation


def test_not_asked_is_no_target_even_for_an_emulated_profile():
    assert emulated_targets(load_profile("arm64-linux"), False) == ()


def test_asked_gives_the_profiles_target(monkeypatch):
    import edgesmith.runtime as runtime

    seen = []
    monkeypatch.setattr(runtime, "check_emulators", lambda targets, flag: seen.append(flag))
    assert emulated_targets(load_profile("arm64-linux"), True) == ("aarch64",)
    assert seen == ["--check-on-emulated"]


def test_a_profile_without_the_key_is_refused_in_one_line(run_cli, tmp_path):
    code, _, err = run_cli(
        "build", "--device", "cpu-x86", "--data", "digits", "--check-on-emulated",
        "--out", tmp_path / "b",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert "--check-on-emulated needs an emulate key in the device profile" in err
    assert not (tmp_path / "b").exists()  # refused before any work


def test_a_missing_aarch64_env_is_named_before_any_work(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv(emulation.AARCH64_ENV_VARIABLE, str(tmp_path / "none"))
    code, _, err = run_cli(
        "build", "--device", "arm64-linux", "--data", "digits", "--check-on-emulated",
        "--out", tmp_path / "b",
    )  # fmt: skip
    assert code == 2
    assert "--check-on-emulated aarch64 needs an aarch64 environment" in err
    assert "edgesmith device setup aarch64" in err


def test_the_target_reaches_the_export_and_its_cache_key(monkeypatch, tmp_path):
    import edgesmith.export as export_stage
    from edgesmith.app.build import candidates
    from edgesmith.app.build.recipe import CandidateSpec

    asked = []

    def export_formats(source, formats, out, *, report=None, **options):
        asked.append(options)
        return []

    monkeypatch.setattr(export_stage, "export_formats", export_formats)
    monkeypatch.setattr(
        candidates, "export_plan", lambda profile, source: (["tflite-int8"], {"target": None}, None)
    )
    source = types.SimpleNamespace(id="0" * 64, path=tmp_path / "src")
    spec = CandidateSpec(name="dense")
    profile = load_profile("arm64-linux")
    candidates.export_candidate(spec, source, profile, tmp_path / "w1", lambda line: None)
    candidates.export_candidate(
        spec, source, profile, tmp_path / "w2", lambda line: None, check_on=("aarch64",)
    )
    assert "check_on" not in asked[0] and asked[1]["check_on"] == ("aarch64",)
    (first,) = (tmp_path / "w1" / "export").iterdir()
    (second,) = (tmp_path / "w2" / "export").iterdir()
    assert first.name != second.name  # an emulated check is not reused for a plain one


@pytest.fixture(autouse=True)
def _no_training(monkeypatch):
    """Nothing here may start a training: a refusal comes before any work."""
    from edgesmith.app.build import pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("the build started its work")

    monkeypatch.setattr(pipeline, "train_source", refuse)
