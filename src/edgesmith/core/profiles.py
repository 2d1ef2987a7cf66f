"""Device profiles: where a model will run, how, and the budgets it must meet.

A profile is a small YAML file; edgesmith ships a few (``devices/``) and a user may pass a path
to their own. Profiles are validated field by field before any work, so a typo names itself.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from edgesmith.core.config import Config, check_positive_int
from edgesmith.core.emulated import EMULATED_TARGETS
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.safe_files import clip, short
from edgesmith.core.shipped import load_shipped_or_file, shipped_names

RUNTIMES = ("litert", "onnxruntime")
PROVIDERS = {
    "litert": ("xnnpack", "builtin"),  # or delegate:/path/to/lib.so
    "onnxruntime": ("cpu", "cuda", "tensorrt"),
}
FORMATS = {
    "litert": ("tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "tflite-int16x8"),
    "onnxruntime": ("onnx", "onnx-int8", "onnx-from-tflite"),
}
ETHOS_U_TARGETS = ("ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u85-256")
# Cortex-M cores whose firmware export builds and runs in QEMU (export/firmware/project.py's
# BOARDS; only cores a firmware was really run on are listed, a test keeps the two equal).
FIRMWARE_TARGETS = ("cortex-m4", "cortex-m7", "cortex-m55")
TARGETS = ("int8-only", "tflm", *ETHOS_U_TARGETS, *FIRMWARE_TARGETS)
# A profile's ``vela`` mapping: what Vela compiles for, beside the target's accelerator.
VELA_FIELDS = ("system_config", "memory_mode", "clock_mhz")
MAX_MESSAGE = 190
"""Longest error line about a profile; a longer one (a hostile key) loses its middle."""
THREADS_PER_CPU = 4
"""A profile's ``threads`` may be at most this many times the CPUs here (100,000 threads crash)."""


def cpu_count() -> int:
    """CPUs of this machine (1 when unknown)."""
    return os.cpu_count() or 1


def max_threads() -> int:
    """The most runtime threads a profile may ask for: ``THREADS_PER_CPU`` x the CPUs here."""
    return THREADS_PER_CPU * cpu_count()


def _positive_finite(value: Any) -> bool:
    """A positive, finite int or float (not a bool, not NaN, not infinity)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < math.inf


@dataclasses.dataclass(frozen=True)
class Budgets(Config):
    """Limits a chosen model must stay within; ``None`` means no limit.

    Attributes:
        max_size_kb: model file size in KiB (flash, for a microcontroller).
        max_latency_ms: median batch-1 latency at the profile's threads.
        min_accuracy: eval accuracy floor, as a fraction (0.85 = 85%).
        max_ram_mb: peak resident memory of the benchmark process.
        max_arena_kb: TFLM tensor arena (microcontrollers): measured by TFLM where it is
            installed, estimated otherwise.
        max_sram_kb: SRAM Vela's compiled network uses (Ethos-U).
        max_flash_kb: flash (on- and off-chip) plus DRAM Vela's compiled network reads its
            weights from (Ethos-U); for a Cortex-M firmware target (``cortex-m4`` ...) the
            firmware ELF's flash (text + rodata + data's load image).
        max_ram_kb: a Cortex-M firmware's RAM: data + bss, the tensor arena included (the
            ELF's sections, stack and heap reservations not counted).
        min_npu_ops: least fraction of operators Vela places on the NPU (1.0: every one).

    For an Ethos-U profile ``max_latency_ms`` is checked against Vela's estimated inference
    time, not the host's latency.
    """

    max_size_kb: float | None = None
    max_latency_ms: float | None = None
    min_accuracy: float | None = None
    max_ram_mb: float | None = None
    max_arena_kb: float | None = None
    max_sram_kb: float | None = None
    max_flash_kb: float | None = None
    max_ram_kb: float | None = None
    min_npu_ops: float | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and not _positive_finite(value):
                raise EdgesmithError(
                    f"budget {field.name} must be a positive number or null (not NaN or infinity). "
                    f"Received: {short(value)}"
                )
        for name in ("min_accuracy", "min_npu_ops"):
            value = getattr(self, name)
            if value is not None and value > 1:
                raise EdgesmithError(f"budget {name} is a fraction in (0, 1]. Received: {value}")


@dataclasses.dataclass(frozen=True)
class DeviceProfile(Config):
    """A target device.

    Attributes:
        name: the profile's name (``--device`` value for shipped ones).
        runtime: ``litert`` or ``onnxruntime``.
        formats: export formats the device accepts, preferred first.
        description: one line for people.
        provider: ``xnnpack``/``builtin``/``delegate:PATH`` for LiteRT; ``cpu``/``cuda``/
            ``tensorrt`` for ONNX Runtime; None picks the first (the CPU path).
        threads: runtime threads.
        affinity: CPU cores to pin the benchmark to, or None.
        target: check for the export (``int8-only``, ``tflm``, an Ethos-U accelerator such
            as ``ethos-u55-128``, which runs Vela, or a Cortex-M core such as ``cortex-m55``,
            whose firmware is built and run in QEMU), or None.
        vela: for an Ethos-U target, Vela's ``system_config`` and ``memory_mode`` (sections of
            Vela's ``Arm/vela.ini``) and ``clock_mhz``; edit a copy of the YAML to override.
        emulate: the emulated CPU that stands in for the device's (``aarch64``,
            ``x86-64-avx2``) where the device is not at hand: ``build --check-on-emulated``
            checks every exported file's parity on it. None: no emulated check.
        budgets: the limits the chosen model must meet.
    """

    name: str
    runtime: str
    formats: tuple[str, ...]
    description: str = ""
    provider: str | None = None
    threads: int = 1
    affinity: tuple[int, ...] | None = None
    target: str | None = None
    vela: dict[str, Any] | None = None
    emulate: str | None = None
    budgets: Budgets = dataclasses.field(default_factory=Budgets)

    def __post_init__(self) -> None:
        where = f"device profile {short(self.name)}"
        _check_one_of(where, "runtime", self.runtime, RUNTIMES)
        known = PROVIDERS[self.runtime]
        if self.provider is None:  # the runtime's usual CPU path
            object.__setattr__(self, "provider", known[0])
        if self.provider not in known and not (
            self.runtime == "litert" and str(self.provider).startswith("delegate:")
        ):
            extra = " or delegate:/path/lib.so" if self.runtime == "litert" else ""
            raise EdgesmithError(
                f"{where}: provider for {self.runtime} must be one of {', '.join(known)}{extra}. "
                f"Received: {short(self.provider)}"
            )
        formats = self.formats
        if isinstance(formats, (list, tuple)):
            formats = tuple(formats)
        if (
            not isinstance(formats, tuple)
            or not formats
            or any(not isinstance(f, str) or f not in FORMATS[self.runtime] for f in formats)
        ):
            raise EdgesmithError(
                f"{where}: formats for {self.runtime} must be among "
                f"{', '.join(FORMATS[self.runtime])}. Received: {short(self.formats)}"
            )
        object.__setattr__(self, "formats", formats)
        check_positive_int(f"{where}: threads", self.threads)
        if self.threads > max_threads():
            raise EdgesmithError(
                f"{where}: threads must be at most {max_threads()} ({THREADS_PER_CPU} x the "
                f"{cpu_count()} CPUs here). Received: {self.threads}"
            )
        if self.affinity is not None:
            cores = tuple(self.affinity)
            if not cores or any(
                isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in cores
            ):
                raise EdgesmithError(
                    f"{where}: affinity must be a list of core numbers >= 0. "
                    f"Received: {short(self.affinity)}"
                )
            object.__setattr__(self, "affinity", cores)
        _check_one_of(where, "target", self.target, TARGETS, nullable=True)
        self._check_vela(where)
        self._check_emulate(where)
        if isinstance(self.budgets, dict):
            object.__setattr__(self, "budgets", Budgets.from_dict(self.budgets))
        elif not isinstance(self.budgets, Budgets):
            raise EdgesmithError(
                f"{where}: budgets must be a mapping. Received: {short(self.budgets)}"
            )

    def device_dict(self) -> dict[str, Any]:
        """The profile as a bench on the device itself reads it: without ``emulate``.

        A build hands its profile to the device's own edgesmith (``device.json``), which may
        predate that key and would refuse it; a bench on the real CPU never reads it.
        """
        values = self.to_dict()
        values.pop("emulate", None)
        return values

    def _check_emulate(self, where: str) -> None:
        """An emulated CPU runs the CPU kernels of LiteRT and ONNX Runtime, nothing else."""
        if self.emulate is None:
            return
        _check_one_of(where, "emulate", self.emulate, EMULATED_TARGETS, nullable=True)
        if self.provider not in ("xnnpack", "builtin", "cpu") or self.target not in (
            None,
            "int8-only",
        ):
            raise EdgesmithError(
                f"{where}: emulate {self.emulate} runs the CPU kernels only; this profile runs "
                f"on {self.provider}" + (f" for target {self.target}" if self.target else "")
            )

    def _check_vela(self, where: str) -> None:
        if self.vela is None:
            return
        if self.target not in ETHOS_U_TARGETS:
            raise EdgesmithError(
                f"{where}: vela settings need an Ethos-U target ({', '.join(ETHOS_U_TARGETS)}). "
                f"Received target: {short(self.target)}"
            )
        if not isinstance(self.vela, dict) or set(self.vela) - set(VELA_FIELDS):
            raise EdgesmithError(
                f"{where}: vela must be a mapping of {', '.join(VELA_FIELDS)}. "
                f"Received: {short(self.vela)}"
            )
        for name in ("system_config", "memory_mode"):
            value = self.vela.get(name)
            if value is not None and not (isinstance(value, str) and value.isidentifier()):
                raise EdgesmithError(
                    f"{where}: vela {name} must be a section name of Vela's vela.ini. "
                    f"Received: {short(value)}"
                )
        clock = self.vela.get("clock_mhz")
        if clock is not None and not _positive_finite(clock):
            raise EdgesmithError(
                f"{where}: vela clock_mhz must be a positive finite number. "
                f"Received: {short(clock)}"
            )

    def runtime_options(self, *, allow_delegate: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``edgesmith.runtime.load`` that realise this profile.

        Args:
            allow_delegate: load the delegate library the profile names. A profile is a file
                anyone may hand over; the native code it points at runs only when the user
                says so (``--allow-delegate``).

        Raises:
            EdgesmithError: when the profile names a delegate and ``allow_delegate`` is False.
        """
        if self.runtime == "litert":
            if self.provider == "builtin":
                return {"threads": self.threads, "provider": "cpu", "xnnpack": False}
            if self.provider.startswith("delegate:"):
                if not allow_delegate:
                    raise EdgesmithError(
                        f"device profile {short(self.name)} names the delegate library "
                        f"{self.provider.partition(':')[2]}: it is native code loaded into this "
                        "process, so pass --allow-delegate (allow_delegate=True) to load it"
                    )
                return {"threads": self.threads, "provider": self.provider}
            return {"threads": self.threads, "provider": "cpu", "xnnpack": True}
        return {"threads": self.threads, "provider": self.provider}


def _check_one_of(
    where: str, key: str, value: Any, choices: tuple[str, ...], *, nullable: bool = False
) -> None:
    """Refuse a ``key`` that is not one of ``choices`` (nor null, where that is allowed).

    The message lists every choice, so a typo in a profile shows what was meant.
    """
    if value in choices or (nullable and value is None):
        return
    null = " or null" if nullable else ""
    raise EdgesmithError(
        f"{where}: {key} must be one of {', '.join(choices)}{null}. Received: {short(value)}"
    )


def shipped_profiles() -> list[str]:
    """Names of the profiles that come with edgesmith."""
    return shipped_names("edgesmith.devices")


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """A shipped profile by name, or a user's YAML/JSON profile by path.

    Raises:
        EdgesmithError: for an unknown name (the known ones are listed) or a bad field (named).
    """
    text = str(name_or_path)
    values = load_shipped_or_file(
        text, "edgesmith.devices", kind="device profile", files="profile YAML"
    )
    if not isinstance(values.get("name"), str):
        values = {**values, "name": Path(text).stem}
    try:
        return DeviceProfile.from_dict(values)
    except EdgesmithError as exc:  # a hostile key or value must not make a megabyte-long line
        message = str(exc)
        if "\n" in message or len(message) > MAX_MESSAGE:
            raise type(exc)(clip(message, MAX_MESSAGE)) from None
        raise
