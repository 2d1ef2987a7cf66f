"""Where a benchmark ran: CPU, cores, OS, Python and runtime versions; memory; CPU affinity.

A latency means little without the machine it was measured on, and a regression gate must
know when a baseline came from somewhere else.
"""

from __future__ import annotations

import os
import platform
import resource

from edgesmith.core.errors import EdgesmithError

RUNTIME_PACKAGES = ("edgesmith", "numpy", "ai-edge-litert", "onnxruntime", "onnxruntime-gpu")
# The runtimes whose version changes the kernels that run a model (and so its latency).
TIMED_RUNTIMES = ("ai-edge-litert", "onnxruntime", "onnxruntime-gpu")
# What must match for two latencies to be comparable: the CPU, its ISA class, the cores and the
# runtime versions. Not the kernel release: a kernel update does not make a baseline foreign
# (it used to, which silently turned the latency gate off).
IDENTITY_KEYS = ("cpu", "isa", "cores", "arch", "runtimes")
# x86 instruction-set classes, best first: the int8 kernels differ between them (VNNI has a
# dot-product instruction; AVX2 alone saturates onnxruntime's U8S8 products).
X86_ISA = (
    ("avx512_vnni", "x86-64-avx512-vnni"),
    ("avx_vnni", "x86-64-avx-vnni"),
    ("avx512f", "x86-64-avx512"),
    ("avx2", "x86-64-avx2"),
    ("sse4_2", "x86-64-sse4"),
)
ARM_ISA = (("i8mm", "arm64-i8mm"), ("asimddp", "arm64-dotprod"), ("asimd", "arm64-neon"))


def cpu_name() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``flags``/``Features`` in ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith(("flags", "features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def isa_class(flags: set[str] | None = None, arch: str | None = None) -> str:
    """The CPU's instruction-set class for int8 kernels: ``x86-64-avx2``, ``arm64-dotprod``...

    Falls back to the architecture name where no flags can be read.
    """
    flags = cpu_flags() if flags is None else flags
    arch = arch or platform.machine()
    for flag, name in (*X86_ISA, *ARM_ISA):
        if flag in flags:
            return name
    return arch or "unknown"


def machine_info() -> dict:
    """The bench schema's ``machine`` record."""
    from edgesmith.core.versions import installed_versions  # 15 ms: only for a record

    versions = installed_versions(RUNTIME_PACKAGES)
    return {
        "cpu": cpu_name(),
        "isa": isa_class(),
        "cores": os.cpu_count(),
        "usable_cores": len(available_cpus()),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "python": platform.python_version(),
        "runtime_versions": versions,
    }


def identity(record: dict) -> dict:
    """The part of a ``machine`` record that decides whether latencies are comparable.

    The runtime versions count (a new LiteRT or onnxruntime changes the kernels); the kernel
    release, Python and numpy do not.
    """
    versions = record.get("runtime_versions")
    versions = versions if isinstance(versions, dict) else {}
    return {
        "cpu": record.get("cpu"),
        "isa": record.get("isa"),
        "cores": record.get("cores"),
        "arch": record.get("arch"),
        "runtimes": {k: versions.get(k) for k in TIMED_RUNTIMES if versions.get(k) is not None},
    }


def same_machine(a: dict, b: dict) -> list[str]:
    """The identity keys on which two ``machine`` records differ (empty: same kind of machine)."""
    ia, ib = identity(a), identity(b)
    return [key for key in IDENTITY_KEYS if ia[key] != ib[key]]


def available_cpus() -> set[int]:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def parse_cpus(text: str) -> set[int]:
    """Parse ``--affinity``: ``0``, ``0,1`` or ``0-3`` (taskset's list form).

    Raises:
        EdgesmithError: for malformed text or CPUs this machine does not have.
    """
    cpus: set[int] = set()
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise EdgesmithError(
                f"--affinity takes CPU numbers like 0, 0,1 or 0-3. Received: {text!r}"
            )
        cpus.update(range(int(low), int(high if dash else low) + 1))
    if not cpus:
        raise EdgesmithError(f"--affinity names no CPU. Received: {text!r}")
    count = os.cpu_count() or 1
    missing = sorted(c for c in cpus if c >= count)
    if missing:
        raise EdgesmithError(
            f"--affinity: CPU(s) {missing} do not exist; this machine has 0-{count - 1}"
        )
    return cpus


def pin_to(cpus: set[int]) -> None:
    """Pin this process (and the runtime's threads it starts later) to ``cpus``.

    Raises:
        EdgesmithError: where the OS has no ``sched_setaffinity`` or refuses the set.
    """
    if not hasattr(os, "sched_setaffinity"):
        raise EdgesmithError("--affinity needs os.sched_setaffinity (Linux); use taskset")
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        raise EdgesmithError(f"--affinity {sorted(cpus)} refused by the OS: {exc}") from None


def rss_mb() -> float:
    """This process's resident memory now, in MiB (Linux ``/proc/self/statm``; else peak)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    On Linux it reads ``VmHWM`` from ``/proc/self/status``: ``ru_maxrss`` survives fork and exec,
    so a bench started from a large process would report its parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 1024
