"""The one small interface every runtime backend implements, and the tensor facts it exposes.

A runner takes model-ready arrays (already normalised and quantised) and returns the raw output
tensor; everything about pixels, labels and dequantisation lives above it in ``model.py``, so a
backend only has to know its runtime.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

import numpy as np


class ProviderFallbackWarning(UserWarning):
    """The model runs somewhere other than where it was asked to (see ``provider_used``)."""


class MetadataWarning(UserWarning):
    """The model file says nothing about preprocessing or labels; defaults are in use."""


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """What a runner reports about its input or output tensor.

    Attributes:
        name: the tensor's name in the model.
        shape: full shape; the batch dimension is ``None`` when the model leaves it open.
        dtype: numpy dtype of the tensor.
        scale: quantisation scale, or ``None`` for an unquantised tensor.
        zero_point: quantisation zero point (0 when unquantised).
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    scale: float | None = None
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        """True when values map to reals as ``(q - zero_point) * scale``."""
        return self.scale is not None

    def quantization_record(self) -> dict | None:
        """The manifest's ``quantization`` record for this tensor (``None`` if unquantised)."""
        if self.scale is None:
            return None
        return {"scale": self.scale, "zero_point": self.zero_point}


class Runner(Protocol):
    """A loaded model on one runtime: ``run`` for results, ``step`` for timing."""

    runtime: str  # "litert", "onnxruntime" or "tflm"
    provider_used: str  # what really executes: "xnnpack", "cpu", "cuda", "delegate:...", ...
    threads: int | None
    input: TensorInfo
    output: TensorInfo

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on a batch of model-dtype inputs; the raw output tensor (a copy)."""
        ...

    def step(self, x: np.ndarray) -> Callable[[], object]:
        """Bind ``x`` as the input and return a call that runs one inference on it.

        The call does exactly what a bare ``invoke()`` / ``session.run()`` loop does, so that
        timing it measures the runtime rather than edgesmith.
        """
        ...

    def embedded_metadata(self) -> dict | None:
        """The edgesmith document embedded in the model file, or ``None`` for a foreign file."""
        ...

    def close(self) -> None:
        """Release the runtime's resources."""
        ...


def quantization_from_pair(scale: float, zero_point: int) -> tuple[float | None, int]:
    """Normalise a runtime's (scale, zero_point): a zero scale means "not quantised"."""
    if not scale:
        return None, 0
    return float(scale), int(zero_point)


def batch_dim(dim: object) -> int | None:
    """A batch dimension as an int, or ``None`` when symbolic or open (-1, 'N', None)."""
    if isinstance(dim, (int, np.integer)) and int(dim) > 0:
        return int(dim)
    return None
