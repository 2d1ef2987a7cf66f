"""Input normalisation: what a model expects from raw pixels, recorded with every artifact.

From raw pixels p in [0, 255] a model sees ``x = (p * scale - mean) / std`` per channel. The
record travels in every manifest and exported file so that the trainer, the exporter and the
runtime on a device preprocess the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgesmith.core.errors import EdgesmithError

NAMES = ("unit", "raw", "standard")


@dataclasses.dataclass(frozen=True)
class Normalization:
    """``x = (p * scale - mean) / std`` per channel, p being raw pixels in [0, 255].

    Attributes:
        name: ``unit`` (p / 255), ``raw`` (p as is), ``standard`` (dataset mean/std on p / 255)
            or ``custom`` (explicit numbers).
        scale: multiplier applied to the raw pixels first.
        mean: per-channel mean subtracted after scaling (length 1 or C).
        std: per-channel divisor (length 1 or C), all > 0.
    """

    name: str = "unit"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if not self.mean or not self.std:
            raise EdgesmithError("normalization mean and std need at least one value each")
        if any(s <= 0 for s in self.std):
            raise EdgesmithError(f"normalization std must be > 0. Received: {list(self.std)}")
        if not self.scale > 0:
            raise EdgesmithError(f"normalization scale must be > 0. Received: {self.scale}")

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Map raw pixels (N, H, W, C), any numeric dtype, to the model's float32 input."""
        x = np.asarray(pixels, dtype=np.float32) * np.float32(self.scale)
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        return (x - mean) / std

    def check_channels(self, channels: int) -> None:
        """Refuse per-channel values whose count does not fit the input's channels.

        Raises:
            EdgesmithError: when mean or std has neither 1 nor ``channels`` values.
        """
        for label, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, channels):
                raise EdgesmithError(
                    f"normalization {label} has {len(values)} values but the input has "
                    f"{channels} channel(s): give 1 or {channels}"
                )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready record (as stored in manifests)."""
        return {
            "name": self.name,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Normalization:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            EdgesmithError: for missing or unknown keys.
        """
        keys = {"name", "scale", "mean", "std"}
        if not isinstance(values, dict) or set(values) != keys:
            raise EdgesmithError(
                f"a normalization record needs the keys {sorted(keys)}. Received: {values!r}"
            )
        return cls(**values)


def parse_normalization(
    text: str, *, mean: np.ndarray | None = None, std: np.ndarray | None = None
) -> Normalization:
    """Parse ``--normalization``: a name or ``scale=S,mean=a,b,c,std=a,b,c``.

    Args:
        text: ``unit``, ``raw``, ``standard`` or an explicit ``key=value`` list.
        mean: the dataset's per-channel mean of p / 255, needed only for ``standard``.
        std: the dataset's per-channel std of p / 255, needed only for ``standard``.

    Raises:
        EdgesmithError: for an unknown name or a malformed explicit form.
    """
    text = text.strip()
    if text == "unit":
        return Normalization("unit", 1.0 / 255.0, (0.0,), (1.0,))
    if text == "raw":
        return Normalization("raw", 1.0, (0.0,), (1.0,))
    if text == "standard":
        if mean is None or std is None:
            raise EdgesmithError("normalization 'standard' needs a dataset to take mean/std from")
        return Normalization("standard", 1.0 / 255.0, tuple(mean), tuple(np.maximum(std, 1e-6)))
    if "=" not in text:
        raise EdgesmithError(
            f"unknown normalization {text!r}: expected one of {', '.join(NAMES)} "
            "or 'scale=S,mean=a,b,c,std=a,b,c'"
        )
    return _parse_explicit(text)


def _parse_explicit(text: str) -> Normalization:
    fields: dict[str, list[float]] = {}
    current = None
    for token in text.split(","):
        token = token.strip()
        if "=" in token:
            current, _, token = token.partition("=")
            current = current.strip()
            if current not in ("scale", "mean", "std"):
                raise EdgesmithError(
                    f"unknown normalization key {current!r}: expected scale, mean or std"
                )
            fields[current] = []
        if current is None:
            raise EdgesmithError(f"malformed normalization {text!r}: expected scale=S,mean=...")
        try:
            fields[current].append(float(token))
        except ValueError:
            raise EdgesmithError(
                f"normalization {current} needs numbers. Received: {token!r}"
            ) from None
    scale = fields.get("scale", [1.0 / 255.0])
    if len(scale) != 1:
        raise EdgesmithError(f"normalization scale takes one number. Received: {scale}")
    return Normalization(
        "custom", scale[0], tuple(fields.get("mean", [0.0])), tuple(fields.get("std", [1.0]))
    )
