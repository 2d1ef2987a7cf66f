"""Device profiles: where a model will run, how, and the budgets it must meet.

A profile is a small YAML file; edgesmith ships a few (``devices/``) and a user may pass a path
to their own. Profiles are validated field by field before any work, so a typo names itself.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

from edgesmith.config import Config, check_positive_int, load_config_file
from edgesmith.errors import EdgesmithError

RUNTIMES = ("litert", "onnxruntime")
PROVIDERS = {
    "litert": ("xnnpack", "builtin"),  # or delegate:/path/to/lib.so
    "onnxruntime": ("cpu", "cuda", "tensorrt"),
}
FORMATS = {
    "litert": ("tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "tflite-int16x8"),
    "onnxruntime": ("onnx", "onnx-int8", "onnx-from-tflite"),
}
TARGETS = ("int8-only", "tflm")


@dataclasses.dataclass(frozen=True)
class Budgets(Config):
    """Limits a chosen model must stay within; ``None`` means no limit.

    Attributes:
        max_size_kb: model file size in KiB (flash, for a microcontroller).
        max_latency_ms: median batch-1 latency at the profile's threads.
        min_accuracy: eval accuracy floor, as a fraction (0.85 = 85%).
        max_ram_mb: peak resident memory of the benchmark process.
        max_arena_kb: TFLM tensor-arena estimate (microcontrollers).
    """

    max_size_kb: float | None = None
    max_latency_ms: float | None = None
    min_accuracy: float | None = None
    max_ram_mb: float | None = None
    max_arena_kb: float | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise EdgesmithError(
                    f"budget {field.name} must be a positive number or null. Received: {value!r}"
                )
        if self.min_accuracy is not None and self.min_accuracy > 1:
            raise EdgesmithError(
                f"budget min_accuracy is a fraction in (0, 1]. Received: {self.min_accuracy}"
            )


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
        target: op-set check for the export (``int8-only`` or ``tflm``), or None.
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
    budgets: Budgets = dataclasses.field(default_factory=Budgets)

    def __post_init__(self) -> None:
        where = f"device profile {self.name!r}"
        if self.runtime not in RUNTIMES:
            raise EdgesmithError(
                f"{where}: runtime must be one of {', '.join(RUNTIMES)}. Received: {self.runtime!r}"
            )
        known = PROVIDERS[self.runtime]
        if self.provider is None:  # the runtime's usual CPU path
            object.__setattr__(self, "provider", known[0])
        if self.provider not in known and not (
            self.runtime == "litert" and str(self.provider).startswith("delegate:")
        ):
            extra = " or delegate:/path/lib.so" if self.runtime == "litert" else ""
            raise EdgesmithError(
                f"{where}: provider for {self.runtime} must be one of {', '.join(known)}{extra}. "
                f"Received: {self.provider!r}"
            )
        formats = tuple(self.formats or ())
        bad = [f for f in formats if f not in FORMATS[self.runtime]]
        if not formats or bad:
            raise EdgesmithError(
                f"{where}: formats for {self.runtime} must be among "
                f"{', '.join(FORMATS[self.runtime])}. Received: {list(self.formats)}"
            )
        object.__setattr__(self, "formats", formats)
        check_positive_int(f"{where}: threads", self.threads)
        if self.affinity is not None:
            cores = tuple(self.affinity)
            if not cores or any(
                isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in cores
            ):
                raise EdgesmithError(
                    f"{where}: affinity must be a list of core numbers >= 0. "
                    f"Received: {self.affinity!r}"
                )
            object.__setattr__(self, "affinity", cores)
        if self.target is not None and self.target not in TARGETS:
            raise EdgesmithError(
                f"{where}: target must be one of {', '.join(TARGETS)} or null. "
                f"Received: {self.target!r}"
            )
        if isinstance(self.budgets, dict):
            object.__setattr__(self, "budgets", Budgets.from_dict(self.budgets))
        elif not isinstance(self.budgets, Budgets):
            raise EdgesmithError(f"{where}: budgets must be a mapping. Received: {self.budgets!r}")

    def runtime_options(self) -> dict[str, Any]:
        """Keyword arguments for ``edgesmith.runtime.load`` that realise this profile."""
        if self.runtime == "litert":
            if self.provider == "builtin":
                return {"threads": self.threads, "provider": "cpu", "xnnpack": False}
            if self.provider.startswith("delegate:"):
                return {"threads": self.threads, "provider": self.provider}
            return {"threads": self.threads, "provider": "cpu", "xnnpack": True}
        return {"threads": self.threads, "provider": self.provider}


def shipped_profiles() -> list[str]:
    """Names of the profiles that come with edgesmith."""
    folder = resources.files("edgesmith.devices")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """A shipped profile by name, or a user's YAML/JSON profile by path.

    Raises:
        EdgesmithError: for an unknown name (the known ones are listed) or a bad field (named).
    """
    text = str(name_or_path)
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        values = load_config_file(path)
    else:
        known = shipped_profiles()
        if text not in known:
            raise EdgesmithError(
                f"unknown device profile {text!r}: expected one of {', '.join(known)} "
                "or the path of a profile YAML file"
            )
        resource = resources.files("edgesmith.devices") / f"{text}.yaml"
        with resources.as_file(resource) as file:
            values = load_config_file(file)
    if not isinstance(values.get("name"), str):
        values = {**values, "name": path.stem}
    return DeviceProfile.from_dict(values)
