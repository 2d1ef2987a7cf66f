"""Bench on a CPU this machine is not: the same runner in a child process under qemu-user.

``--emulate x86-64-avx2`` runs this very Python under ``qemu-x86_64 -cpu Haswell`` (AVX2, no
VNNI), so ONNX Runtime and LiteRT take the kernels an x86 box without VNNI takes (the U8S8
saturation of 8-bit weights shows there, not on a VNNI host). The child is this process's own
Python and venv, started under the emulator; the parent reads back its bench document.
``--emulate aarch64`` runs an aarch64 Python (``aarch64_env.py``: a Debian arm64 root with the
runtime's aarch64 wheels) under ``qemu-aarch64 -cpu cortex-a72``, with this package's source on
its path, so the ARM kernels of LiteRT and ONNX Runtime give the numbers.

What an emulated run is fit for: accuracy and agreement are the target's kernels'. Its latency
is the emulator's wall-clock on this host and is labelled so (the document's ``emulation``
record); budgets on latency are not judged from it and the gate does not compare it.

The same aarch64 Python also stands in for a whole device: ``device setup aarch64`` writes a
launcher (:func:`launcher_text`) that a build reaches over SSH as ``--remote-edgesmith``. Its
first stderr line names the emulated CPU (:data:`EMULATED_LINE`), so the build labels the
device's document as this module labels its own (:func:`device_emulation`, :func:`relabel`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgesmith.core.emulated import EMULATED_TARGETS
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import Reporter
from edgesmith.runtime.bench_schema import BenchDocument, Emulation, Machine, parse_document
from edgesmith.runtime.timing import TimingPlan

if TYPE_CHECKING:
    from edgesmith.runtime.aarch64_env import Aarch64Env

TARGETS = EMULATED_TARGETS
AARCH64_ENV_VARIABLE = "EDGESMITH_AARCH64_ENV"
"""Where the aarch64 env is (``edgesmith device setup aarch64 DIR``), when not the default."""
LATENCY_NOTE = (
    "emulated: accuracy and agreement are the target's kernels'; latency is the emulator's "
    "wall-clock on the host, not the device's time"
)
EMULATED_TIMEOUT_S = 3600.0
EMULATED_TIMING = TimingPlan(min_runs=5, min_seconds=0.0, warmup_runs=1, warmup_seconds=0.0)
"""An emulated latency is not the device's, so bench and check time it only briefly by default."""
EMULATED_LINE = "edgesmith: emulated: "
"""How a launcher's stderr line starts: then JSON naming the target, CPU, ISA and arch."""
QEMU_HINT = "install it with: apt-get install qemu-user-static (Debian/Ubuntu)"


@dataclasses.dataclass(frozen=True)
class Emulator:
    """How to start a Python on an emulated target, and what to call it."""

    target: str
    argv: tuple[str, ...]
    env: dict[str, str]
    cpu: str
    isa: str
    arch: str

    def record(self) -> Emulation:
        """The bench document's ``emulation`` record."""
        return Emulation(target=self.target, emulator=self.cpu, note=LATENCY_NOTE)


def check_target(target: str, flag: str = "--emulate") -> str:
    """``target`` when it is one of :data:`TARGETS`.

    Raises:
        EdgesmithError: naming the flag, the value and the targets there are.
    """
    if target not in TARGETS:
        raise EdgesmithError(f"{flag} must be one of {', '.join(TARGETS)}. Received: {target!r}")
    return target


def qemu_version(qemu: str) -> str:
    """``7.2.0`` from ``qemu-x86_64-static --version``, or ``unknown``."""
    try:
        said = subprocess.run(
            [qemu, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = said.split()
    return words[2] if len(words) > 2 and words[1] == "version" else "unknown"


def _qemu(name: str, flag: str = "--emulate") -> str:
    found = shutil.which(f"{name}-static") or shutil.which(name)
    if found is None:
        raise EdgesmithError(f"{flag} needs {name}-static, which is not installed: {QEMU_HINT}")
    return found


def emulator(target: str, *, flag: str = "--emulate") -> Emulator:
    """The emulator for ``target`` on this host.

    Args:
        target: one of :data:`TARGETS`.
        flag: the option that asked for it, named in the errors (``--check-on``).

    Raises:
        EdgesmithError: for an unknown target, a missing qemu or aarch64 env (naming what to
            install or make), or an x86 target on a non-x86 host.
    """
    check_target(target, flag)
    if target == "x86-64-avx2":
        import platform

        if platform.machine() not in ("x86_64", "AMD64"):
            raise EdgesmithError(
                f"{flag} x86-64-avx2 runs this Python under qemu-x86_64, which needs an "
                f"x86-64 host (this one is {platform.machine()})"
            )
        qemu = _qemu("qemu-x86_64", flag)
        return Emulator(
            target=target,
            argv=(qemu, "-cpu", "Haswell", sys.executable),
            env={},
            cpu=f"qemu-x86_64 {qemu_version(qemu)} -cpu Haswell (AVX2, no VNNI)",
            isa="x86-64-avx2",
            arch="x86_64",
        )
    from edgesmith.runtime.aarch64_env import find_aarch64

    folder = aarch64_env_dir()
    if not folder.exists():
        raise EdgesmithError(
            f"{flag} aarch64 needs an aarch64 environment, and there is none at {folder}: "
            f"make one with: edgesmith device setup aarch64 {folder} (or set "
            f"{AARCH64_ENV_VARIABLE} to one)"
        )
    return aarch64_emulator(find_aarch64(folder))


def aarch64_emulator(env: Aarch64Env) -> Emulator:
    """The emulator of a finished aarch64 env: one description for the child and the launcher."""
    return Emulator(
        target="aarch64", argv=env.argv, env=env.env, cpu=f"{env.cpu} (emulated Cortex-A72)",
        isa="arm64-neon", arch="aarch64",
    )  # fmt: skip


def launcher_text(chosen: Emulator) -> str:
    """A ``/bin/sh`` script that runs ``python -m edgesmith`` on the emulated CPU.

    It is the emulated child's start (``chosen.argv`` and ``chosen.env``, this package's source
    on the path, as :func:`~edgesmith.runtime.child.run_job` starts it) with the CLI instead of
    a job, so a build can use it as the device's edgesmith over SSH. It first prints
    :data:`EMULATED_LINE` on stderr: nothing in the guest can tell it is emulated, and the
    document it prints must not pass for a real device's.
    """
    from edgesmith.runtime.child import with_source_path

    said = {"target": chosen.target, "cpu": chosen.cpu, "isa": chosen.isa, "arch": chosen.arch}
    env = with_source_path(dict(chosen.env))
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())
    argv = " ".join(shlex.quote(part) for part in chosen.argv)
    return (
        f"#!/bin/sh\n# edgesmith on an emulated {chosen.target} CPU: {chosen.cpu}.\n"
        "# Written by edgesmith device setup; a device for: edgesmith build --host USER@HOST "
        "--remote-edgesmith THIS\n# Accuracy is the target's kernels'; latency is the "
        "emulator's wall-clock on the host, not a device's time.\n"
        f"printf '%s\\n' {shlex.quote(EMULATED_LINE + json.dumps(said))} >&2\n"
        f'{exports}exec {argv} -m edgesmith "$@"\n'
    )


def device_emulation(stderr: str, where: str) -> Emulator | None:
    """The emulated CPU a device's launcher named on its stderr, or None for a real device.

    The returned emulator only names the CPU (its ``argv`` is empty): it is for
    :func:`relabel`, never for starting a Python.

    Raises:
        EdgesmithError: for a line that says the device is emulated but cannot be read, so an
            emulated document never passes for a device's.
    """
    lines = [line.strip() for line in (stderr or "").splitlines()]
    found = next((line for line in lines if line.startswith(EMULATED_LINE)), None)
    if found is None:
        return None
    try:
        said = json.loads(found[len(EMULATED_LINE) :])
        fields = {key: said[key] for key in ("target", "cpu", "isa", "arch")}
    except (ValueError, KeyError, TypeError):
        fields = {}
    if fields.get("target") not in TARGETS or not all(
        isinstance(value, str) and value for value in fields.values()
    ):
        raise EdgesmithError(
            f"the device {where} says it is emulated, but not which CPU: {found[:120]!r}"
        )
    return Emulator(argv=(), env={}, **fields)


def aarch64_env_dir() -> Path:
    """``$EDGESMITH_AARCH64_ENV``, else ``~/.cache/edgesmith/aarch64``."""
    given = os.environ.get(AARCH64_ENV_VARIABLE)
    return Path(given) if given else Path.home() / ".cache" / "edgesmith" / "aarch64"


def relabel(document: BenchDocument, chosen: Emulator) -> BenchDocument:
    """The document with its machine named as the emulated CPU, and the ``emulation`` record.

    qemu-user shows the child the host's ``/proc/cpuinfo`` (the aarch64 env: a Raspberry Pi
    4's, as a real one shows), so the CPU the child recorded could pass for a real machine's;
    the emulated CPU's name and ISA class replace it, and the rest of the guest's record stays.
    """

    def machine(record: Machine | None) -> Machine | None:
        if record is None:
            return None
        return dataclasses.replace(record, cpu=chosen.cpu, isa=chosen.isa, arch=chosen.arch)

    results = tuple(dataclasses.replace(r, machine=machine(r.machine)) for r in document.results)
    return document.replace(
        machine=machine(document.machine), results=results, emulation=chosen.record()
    )


def emulated_benchmark(
    paths: Sequence[str | Path],
    *,
    target: str,
    data: str | None = None,
    config: object = None,
    report: Reporter | None = None,
) -> BenchDocument:
    """``benchmark`` run on an emulated CPU; returns its labelled bench document.

    Args:
        paths: artifact directories or .tflite/.onnx files.
        target: one of :data:`TARGETS`.
        data: the data spec for inputs and accuracy.
        config: a :class:`~edgesmith.runtime.bench.BenchConfig` (default: the defaults).
        report: progress lines (the child's, prefixed with the target).

    Raises:
        EdgesmithError: for a missing emulator, or the child's own error.
    """
    from edgesmith.runtime.bench import BenchConfig
    from edgesmith.runtime.child import run_job  # not at the top: the child's own module

    config = config if config is not None else BenchConfig()
    if not isinstance(config, BenchConfig):
        raise TypeError("config must be a BenchConfig")
    chosen = emulator(target)
    request = {
        "job": "bench",
        "paths": [str(p) for p in paths],
        "data": data,
        "config": config.to_dict(),
    }
    answer = run_job(
        chosen.argv,
        request,
        label=f"emulated {target}",
        timeout=EMULATED_TIMEOUT_S,
        env=chosen.env,
        report=report,
    )
    return relabel(parse_document(answer, f"the emulated {target} bench"), chosen)


def check_emulators(targets: Sequence[str], *, flag: str = "--emulate") -> list[Emulator]:
    """The emulator of each target, found before any work, so that a missing one costs nothing.

    Raises:
        EdgesmithError: one line naming the first target that cannot run here and what to
            install (qemu-user-static) or make (``edgesmith device setup aarch64``).
    """
    return [emulator(target, flag=flag) for target in targets]


@dataclasses.dataclass(frozen=True)
class EmulatedOutputs:
    """What a file computed on an emulated CPU, and which runner computed it there."""

    outputs: object
    """float32 ``(N, K)`` outputs (a numpy array)."""
    runtime: str
    provider: str


class EmulatedSession:
    """A Python on an emulated CPU, kept running to run many files through the runtime.

    Start-up under qemu (the interpreter, numpy, the runtimes) takes seconds, so a caller that
    runs several files on one target (export's ``--check-on``) starts one session per target
    and sends it every file; the start-up runs while the caller does other work.

    Args:
        target: one of :data:`TARGETS`.
        flag: the option that asked for it, for the errors.
        report: the child's progress lines.

    Raises:
        EdgesmithError: for a target that cannot run here (see :func:`emulator`).
    """

    def __init__(
        self, target: str, *, flag: str = "--emulate", report: Reporter | None = None
    ) -> None:
        import tempfile

        from edgesmith.runtime.child import ChildSession

        self.emulator = emulator(target, flag=flag)
        self._folder = tempfile.TemporaryDirectory(prefix="edgesmith-emulated-")
        self._child = ChildSession(
            self.emulator.argv, label=f"emulated {target}", env=self.emulator.env, report=report
        )
        self._pixels: tuple[object, Path] | None = None
        self._asked = 0

    @property
    def target(self) -> str:
        """The emulated target's name."""
        return self.emulator.target

    @property
    def alive(self) -> bool:
        """Whether the child still runs (a crash or a timeout ends it)."""
        return self._child.alive

    def predict(
        self, path: str | Path, pixels, *, xnnpack: bool = True, provider: str | None = None
    ) -> EmulatedOutputs:
        """The file's outputs for raw ``pixels``, computed on the target.

        Raises:
            EdgesmithError: the runtime's own error for this file (the session lives on), or
                the child's end or timeout.
        """
        import numpy as np

        folder = Path(self._folder.name)
        if self._pixels is None or self._pixels[0] is not pixels:
            file = folder / f"pixels-{self._asked}.npy"
            np.save(file, np.ascontiguousarray(pixels), allow_pickle=False)
            self._pixels = (pixels, file)
        self._asked += 1
        out = folder / f"outputs-{self._asked}.npy"
        request = {
            "job": "predict",
            "path": str(Path(path).resolve()),
            "pixels": str(self._pixels[1]),
            "outputs": str(out),
            "xnnpack": xnnpack,
            "provider": provider,
        }
        answer = self._child.ask(request, timeout=EMULATED_TIMEOUT_S)
        try:
            outputs = np.load(out, allow_pickle=False)
        finally:
            out.unlink(missing_ok=True)
        return EmulatedOutputs(outputs, str(answer["runtime"]), str(answer["provider"]))

    def close(self, *, kill: bool = False) -> None:
        """End the child and remove the session's files."""
        try:
            self._child.close(kill=kill)
        finally:
            self._folder.cleanup()

    def __enter__(self) -> EmulatedSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(kill=exc_info[0] is not None)
