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
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import Reporter
from edgesmith.runtime.bench_schema import BenchDocument, Emulation, Machine, parse_document

TARGETS = ("x86-64-avx2", "aarch64")
AARCH64_ENV_VARIABLE = "EDGESMITH_AARCH64_ENV"
"""Where the aarch64 env is (``edgesmith device setup aarch64 DIR``), when not the default."""
LATENCY_NOTE = (
    "emulated: accuracy and agreement are the target's kernels'; latency is the emulator's "
    "wall-clock on the host, not the device's time"
)
EMULATED_TIMEOUT_S = 3600.0
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


def check_target(target: str) -> str:
    """``target`` when it is one of :data:`TARGETS`.

    Raises:
        EdgesmithError: naming the value and the targets there are.
    """
    if target not in TARGETS:
        raise EdgesmithError(f"--emulate must be one of {', '.join(TARGETS)}. Received: {target!r}")
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


def _qemu(name: str) -> str:
    found = shutil.which(f"{name}-static") or shutil.which(name)
    if found is None:
        raise EdgesmithError(f"--emulate needs {name}-static, which is not installed: {QEMU_HINT}")
    return found


def emulator(target: str) -> Emulator:
    """The emulator for ``target`` on this host.

    Raises:
        EdgesmithError: for an unknown target, a missing qemu, or an x86 target on a non-x86
            host.
    """
    check_target(target)
    if target == "x86-64-avx2":
        import platform

        if platform.machine() not in ("x86_64", "AMD64"):
            raise EdgesmithError(
                f"--emulate x86-64-avx2 runs this Python under qemu-x86_64, which needs an "
                f"x86-64 host (this one is {platform.machine()})"
            )
        qemu = _qemu("qemu-x86_64")
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
            f"--emulate aarch64 needs an aarch64 environment, and there is none at {folder}: "
            f"make one with: edgesmith device setup aarch64 {folder} (or set "
            f"{AARCH64_ENV_VARIABLE} to one)"
        )
    env = find_aarch64(folder)
    return Emulator(
        target=target, argv=env.argv, env=env.env, cpu=f"{env.cpu} (emulated Cortex-A72)",
        isa="arm64-neon", arch="aarch64",
    )  # fmt: skip


def aarch64_env_dir() -> Path:
    """``$EDGESMITH_AARCH64_ENV``, else ``~/.cache/edgesmith/aarch64``."""
    import os

    given = os.environ.get(AARCH64_ENV_VARIABLE)
    return Path(given) if given else Path.home() / ".cache" / "edgesmith" / "aarch64"


def relabel(document: BenchDocument, chosen: Emulator) -> BenchDocument:
    """The document with its machine named as the emulated CPU, and the ``emulation`` record.

    qemu-user shows the child the host's ``/proc/cpuinfo``, so the machine record the child
    wrote names the host's CPU; the target's name and ISA class replace it.
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
