"""build --host against an emulated device: the launcher's label reaches the build's document.

``edgesmith device setup aarch64 DIR`` writes ``DIR/bin/edgesmith`` (the CLI under qemu-aarch64),
which names its emulated CPU on its first stderr line. The fast tests run test_remote.py's fake
device behind that line; the slow one runs the real launcher behind test_build.py's loopback
sshd, so that ``build --device arm64-linux --host ... --remote-edgesmith DIR/bin/edgesmith``
is shown end to end.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import types
from pathlib import Path

import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime.emulation import LATENCY_NOTE, Emulator, device_emulation, launcher_text


def _sibling(name: str) -> types.ModuleType:
    """A test module beside this one, loaded by its path (the tests are not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"_edgesmith_tests_{name}", Path(__file__).with_name(f"{name}.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_remote = _sibling("test_remote")
device = _remote.device  # the fake device: ssh/scp on PATH act on a local folder
sshd = _sibling("test_build").sshd  # a throwaway sshd on a free loopback port

EMULATED = Emulator(
    target="aarch64", argv=("/usr/bin/qemu-aarch64-static",), env={},
    cpu="qemu-aarch64 7.2.22 -cpu cortex-a72 (emulated Cortex-A72)", isa="arm64-neon",
    arch="aarch64",
)  # fmt: skip


def announcing(path: Path, edgesmith: Path, line: str | None = None) -> Path:
    """A device edgesmith that says what the launcher says on stderr, then runs ``edgesmith``."""
    if line is None:  # the launcher's own announcement, as device setup writes it
        text = launcher_text(EMULATED)
        line = next(row for row in text.splitlines() if row.startswith("printf "))
    else:
        line = f"printf '%s\\n' {shlex.quote(line)} >&2"
    path.write_text(f'#!/bin/sh\n{line}\nexec {shlex.quote(str(edgesmith))} "$@"\n')
    path.chmod(0o755)
    return path


# --- the label, on the fake device ----------------------------------------------------------


def test_an_emulated_devices_document_gets_the_emulation_label(tmp_path, device):
    home, edgesmith, _ = device
    launcher = announcing(tmp_path / "launcher", edgesmith)
    out = tmp_path / "out"
    (document, _), lines = _remote.bench("pi@emu", _remote.exported_files(tmp_path), out, launcher)
    assert document.emulation is not None
    assert document.emulation.to_dict() == {
        "target": "aarch64", "emulator": EMULATED.cpu, "note": LATENCY_NOTE,
    }  # fmt: skip
    assert (document.machine.cpu, document.machine.isa, document.machine.arch) == (
        EMULATED.cpu, "arm64-neon", "aarch64",
    )  # fmt: skip
    assert document.host == "pi@emu" and len(document.results) == 2
    said = [line for line in lines if "is an emulated aarch64" in line]
    assert len(said) == 1 and "max_latency_ms 2 is not judged on it" in said[0]
    report = (out / "report.md").read_text()
    assert report.startswith(f"> {EMULATED.cpu}: {LATENCY_NOTE}\n\n# edgesmith bench")
    assert _remote.staging_folders(home / "edgesmith-build") == []


def test_a_real_devices_document_is_not_labelled(tmp_path, device):
    _, edgesmith, _ = device
    out = tmp_path / "out"
    (document, _), lines = _remote.bench("pi@dev", _remote.exported_files(tmp_path), out, edgesmith)
    assert document.emulation is None
    assert not any("emulated" in line for line in lines)
    assert (out / "report.md").read_text() == "# edgesmith bench\n"


def test_an_unreadable_emulated_line_is_refused(tmp_path, device):
    home, edgesmith, _ = device
    launcher = announcing(tmp_path / "launcher", edgesmith, "edgesmith: emulated: {not json")
    with pytest.raises(EdgesmithError, match="says it is emulated, but not which CPU"):
        _remote.bench("pi@emu", _remote.exported_files(tmp_path), tmp_path / "out", launcher)
    assert _remote.staging_folders(home / "edgesmith-build") == []


@pytest.mark.parametrize(
    "said",
    [
        "{not json",
        "[]",
        '{"target": "riscv", "cpu": "x", "isa": "y", "arch": "z"}',
        '{"target": "aarch64", "cpu": "", "isa": "arm64-neon", "arch": "aarch64"}',
        '{"target": "aarch64", "cpu": "x", "isa": "arm64-neon"}',
    ],
    ids=["not-json", "not-an-object", "unknown-target", "empty-cpu", "no-arch"],
)
def test_device_emulation_refuses_what_it_cannot_read(said):
    with pytest.raises(EdgesmithError, match="at pi@emu says it is emulated, but not which CPU"):
        device_emulation(f"noise\nedgesmith: emulated: {said}\n", "at pi@emu")


def test_device_emulation_reads_only_its_own_line():
    assert device_emulation("", "here") is None
    assert device_emulation("edgesmith: note: emulated: nothing\nedgesmith: error: x", "h") is None
    line = json.dumps({"target": "aarch64", "cpu": "c", "isa": "i", "arch": "a"})
    said = device_emulation(f"  edgesmith: emulated: {line}\nedgesmith: error: late\n", "here")
    assert said is not None and (said.target, said.cpu, said.argv) == ("aarch64", "c", ())


# --- end to end: a loopback sshd, the real launcher, the emulated aarch64 ------------------


@pytest.fixture(scope="module")
def launcher(tmp_path_factory) -> Path:
    """The launcher device setup writes, for the aarch64 env here (written to a temp folder)."""
    from edgesmith.runtime.aarch64_env import find_aarch64
    from edgesmith.runtime.emulation import aarch64_emulator, aarch64_env_dir

    if shutil.which("qemu-aarch64-static") is None and shutil.which("qemu-aarch64") is None:
        pytest.skip("qemu-aarch64-static is not installed (apt-get install qemu-user-static)")
    try:
        env = find_aarch64(aarch64_env_dir())
    except EdgesmithError as exc:
        pytest.skip(
            f"no aarch64 env (edgesmith device setup aarch64; EDGESMITH_AARCH64_ENV): {exc}"
        )
    path = tmp_path_factory.mktemp("launcher") / "edgesmith"
    path.write_text(launcher_text(aarch64_emulator(env)))
    path.chmod(0o755)
    return path


RECIPE = {
    "train": {"model": "resnet8", "epochs": 2},
    "candidates": [{"name": "dense", "steps": []}],
}


@pytest.mark.slow
def test_build_benches_on_the_emulated_aarch64_over_loopback_ssh(
    digits_artifact, sshd, launcher, tmp_path
):
    """The flow a user runs against a local sshd, with the aarch64 runtime answering it."""
    from edgesmith.app.build import build
    from edgesmith.core.errors import CheckFailed
    from edgesmith.runtime.timing import TimingPlan

    host, options, folder = sshd
    remote = folder / "emulated-home"
    remote.mkdir()
    lines: list[str] = []
    try:
        result = build(
            "arm64-linux", "digits", tmp_path / "pi", recipe=RECIPE, source=str(digits_artifact),
            timing=TimingPlan(min_runs=20, min_seconds=0.1, warmup_runs=2, warmup_seconds=0.0),
            host=host, ssh_options=options, remote_edgesmith=str(launcher),
            remote_dir=str(remote), report=lines.append,
        )  # fmt: skip
    except CheckFailed as exc:  # another budget (size, RAM) may still fail: still measured
        result = exc.result  # type: ignore[attr-defined]
    document = result.document
    assert all("max_latency_ms" not in row["budgets"] for row in result.rows)  # never judged
    assert document.host == host
    assert document.emulation is not None and document.emulation.target == "aarch64"
    assert document.emulation.note == LATENCY_NOTE
    machine = document.machine
    assert "-cpu cortex-a72" in machine.cpu and machine.cpu == document.emulation.emulator
    assert (machine.isa, machine.arch) == ("arm64-neon", "aarch64")  # the guest's, not this host's
    assert any(f"[remote] {host} is an emulated aarch64" in line for line in lines)
    assert sorted(p.name for p in remote.iterdir()) == []  # its staging folder is gone
    measured = [row for row in result.rows if row["p50_ms"] is not None]
    assert len(measured) == 4  # arm64-linux's four tflite formats of the one candidate
    assert all(row["accuracy"] > 0.5 for row in measured)  # the aarch64 kernels' accuracy
    if result.bundle is not None:
        bench = json.loads((result.bundle / "bench.json").read_text())
        assert bench["emulation"]["target"] == "aarch64"
    report = (tmp_path / "pi" / "work" / "bench" / "report.md").read_text()
    assert report.startswith(f"> {document.emulation.emulator}: ")
