"""The emulated aarch64 env: its error paths (no network), its launcher, a slow bench under qemu."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime import aarch64_env
from edgesmith.runtime.aarch64_env import (
    INCOMPLETE,
    cpuinfo_text,
    find_aarch64,
    launcher_path,
    setup_aarch64,
    write_launcher,
)
from edgesmith.runtime.child import source_dir
from edgesmith.runtime.emulation import device_emulation

FIXTURES = Path(__file__).parent / "fixtures"


def _fake_env(directory: Path) -> Path:
    """The files :func:`find_aarch64` looks for (no working Python: nothing here runs it)."""
    root = directory / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "python3").write_text("")
    (root / "proc").mkdir()
    (root / "proc" / "cpuinfo").write_text(cpuinfo_text())
    for package in ("numpy", "onnxruntime", "ai_edge_litert"):
        (directory / "site" / package).mkdir(parents=True)
    return directory


def _which_without(*missing: str):
    real = shutil.which

    def which(name: str, *args, **kwargs):
        return None if name in missing else real(name, *args, **kwargs)

    return which


def test_missing_qemu_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(
        aarch64_env.shutil, "which", _which_without("qemu-aarch64-static", "qemu-aarch64")
    )
    with pytest.raises(EdgesmithError, match="qemu-aarch64-static.*apt-get install"):
        setup_aarch64(tmp_path / "env")


def test_missing_debootstrap_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(aarch64_env, "_qemu", lambda: "/usr/bin/qemu-aarch64-static")
    monkeypatch.setattr(aarch64_env.shutil, "which", _which_without("debootstrap"))
    with pytest.raises(EdgesmithError, match="debootstrap.*apt-get install debootstrap"):
        setup_aarch64(tmp_path / "env")
    assert (tmp_path / "env" / INCOMPLETE).exists()  # never looks done
    with pytest.raises(EdgesmithError, match="half made"):
        find_aarch64(tmp_path / "env")


def test_half_made_folder_is_refused_even_with_every_file(tmp_path, monkeypatch):
    monkeypatch.setattr(aarch64_env, "_qemu", lambda: "/usr/bin/qemu-aarch64-static")
    env = _fake_env(tmp_path / "env")
    (env / INCOMPLETE).touch()
    with pytest.raises(EdgesmithError, match="half made"):
        find_aarch64(env)


def test_finished_env_returns_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(aarch64_env, "_qemu", lambda: "/usr/bin/qemu-aarch64-static")

    def no_commands(*args, **kwargs):
        raise AssertionError("a finished env ran a command")

    monkeypatch.setattr(aarch64_env, "_run", no_commands)
    env = setup_aarch64(_fake_env(tmp_path / "env"))
    assert env.root == tmp_path / "env" / "root"
    assert env.argv == (
        "/usr/bin/qemu-aarch64-static", "-L", str(env.root), "-cpu", "cortex-a72",
        str(env.root / "usr" / "bin" / "python3"),
    )  # fmt: skip
    assert env.env["PYTHONPATH"] == str(tmp_path / "env" / "site")
    assert env.env["PYTHONHOME"] == str(env.root / "usr")
    assert os.access(tmp_path / "env" / "bin" / "edgesmith", os.X_OK)  # a finished env gets it


FAKE_QEMU = """#!/bin/sh
echo "argv: $*"
echo "PYTHONPATH=$PYTHONPATH"
echo "PYTHONHOME=$PYTHONHOME"
echo "PYTHONNOUSERSITE=$PYTHONNOUSERSITE"
"""


def test_launcher_runs_the_cli_under_qemu_and_says_it_is_emulated(tmp_path, monkeypatch):
    """The launcher, run with a stand-in qemu that prints what it was started with."""
    qemu = tmp_path / "qemu-aarch64-static"
    qemu.write_text(FAKE_QEMU)
    qemu.chmod(0o755)
    monkeypatch.setattr(aarch64_env, "_qemu", lambda: str(qemu))
    env = _fake_env(tmp_path / "env")
    launcher = write_launcher(env)
    assert launcher == env / "bin" / "edgesmith" == launcher_path(env)
    assert launcher.stat().st_mode & 0o777 == 0o755
    assert launcher.read_text().startswith("#!/bin/sh\n# edgesmith on an emulated aarch64 CPU")
    ran = subprocess.run(
        [str(launcher), "bench", "two words", "--json"], capture_output=True, text=True,
        timeout=30, check=True,
    )  # fmt: skip
    root = env / "root"
    assert ran.stdout.splitlines() == [
        f"argv: -L {root} -cpu cortex-a72 {root}/usr/bin/python3 -m edgesmith bench two words "
        "--json",
        f"PYTHONPATH={env / 'site'}:{source_dir()}",  # the wheels first, then this edgesmith
        f"PYTHONHOME={root / 'usr'}",
        "PYTHONNOUSERSITE=1",
    ]
    said = device_emulation(ran.stderr, "here")
    assert said is not None and (said.target, said.isa, said.arch) == (
        "aarch64", "arm64-neon", "aarch64",
    )  # fmt: skip
    assert said.cpu.endswith("-cpu cortex-a72 (emulated Cortex-A72)")


def test_launcher_is_replaced_whole_and_beside_a_users_sysroot(tmp_path, monkeypatch):
    monkeypatch.setattr(aarch64_env, "_qemu", lambda: "/usr/bin/qemu-aarch64-static")
    env = _fake_env(tmp_path / "env")
    (env / "bin").mkdir()
    (env / "bin" / "edgesmith").write_text("an old launcher")
    write_launcher(env)
    assert "-m edgesmith" in (env / "bin" / "edgesmith").read_text()
    assert sorted(p.name for p in (env / "bin").iterdir()) == ["edgesmith"]  # no temp file left
    sysroot = tmp_path / "sysroot"  # its own bin/ is the guest's: the launcher goes beside it
    (sysroot / "usr" / "bin").mkdir(parents=True)
    (sysroot / "usr" / "bin" / "python3").write_text("")
    assert launcher_path(sysroot) == sysroot / "edgesmith-bin" / "edgesmith"


@pytest.mark.parametrize("made", ["nothing", "half"], ids=["not-an-env", "half-made"])
def test_launcher_refuses_a_folder_that_is_not_a_finished_env(tmp_path, monkeypatch, made):
    monkeypatch.setattr(aarch64_env, "_qemu", lambda: "/usr/bin/qemu-aarch64-static")
    folder = tmp_path / "env"
    if made == "half":
        _fake_env(folder)
        (folder / INCOMPLETE).touch()
    else:
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
    with pytest.raises(EdgesmithError, match="not an aarch64 env|half made"):
        write_launcher(folder)
    assert not (folder / "bin").exists()


def test_folder_that_is_not_an_env_is_refused_and_left_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(aarch64_env, "_qemu", lambda: "/usr/bin/qemu-aarch64-static")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(EdgesmithError, match="not an aarch64 env"):
        find_aarch64(tmp_path)
    with pytest.raises(EdgesmithError, match="not an aarch64 env"):
        setup_aarch64(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_missing_wheels_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(aarch64_env, "_qemu", lambda: "/usr/bin/qemu-aarch64-static")
    env = _fake_env(tmp_path / "env")
    (env / "site" / "onnxruntime").rmdir()
    with pytest.raises(EdgesmithError, match="lacks onnxruntime"):
        find_aarch64(env)


def test_missing_folder_is_one_line(tmp_path):
    with pytest.raises(EdgesmithError, match="not a folder"):
        find_aarch64(tmp_path / "nowhere")


def test_cpuinfo_is_a_cortex_a72():
    text = cpuinfo_text(4)
    assert text.count("CPU part\t: 0xd08") == 4
    assert "processor\t: 3" in text


@pytest.mark.slow
def test_emulated_bench_matches_native_accuracy():
    where = os.environ.get("EDGESMITH_AARCH64_ENV")
    if not where:
        pytest.skip("set EDGESMITH_AARCH64_ENV to an env made by setup_aarch64")
    from edgesmith.runtime.bench import BenchConfig, benchmark
    from edgesmith.runtime.child import run_job
    from edgesmith.runtime.timing import TimingPlan

    env = find_aarch64(where)
    paths = [str(FIXTURES / "int8.tflite"), str(FIXTURES / "int8_io.onnx")]
    config = BenchConfig(timing=TimingPlan(min_runs=10, min_seconds=0.0))
    answer = run_job(
        env.argv,
        {"job": "bench", "paths": paths, "data": "digits", "config": config.to_dict()},
        label="emulated aarch64",
        timeout=1800,
        env=env.env,
    )
    native = benchmark(paths, data="digits", config=config).document.to_dict()
    assert [r["machine"]["arch"] for r in answer["results"]] == ["aarch64", "aarch64"]
    for emulated, here in zip(answer["results"], native["results"], strict=True):
        assert abs(emulated["accuracy"] - here["accuracy"]) * 100 <= 0.3, emulated["path"]
