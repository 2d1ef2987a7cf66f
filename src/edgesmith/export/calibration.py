"""Calibration inputs for integer formats: the model's own inputs, from the source's dataset.

With ``--raw-input`` the model's input is the pixel itself, and the int8 input quantisation
should come out as MLCommons' reference has it: scale 1, zero point -128 (int8 = pixel - 128),
or zero point 0 for uint8. The converter derives it from the observed input range, so the
calibration set is made to span exactly [0, 255]: one pixel of the first image is set to 0 and
one to 255. That moves no activation range measurably and makes the scale exact.
"""

from __future__ import annotations

import numpy as np

from edgesmith.core.normalization import Normalization

PIXEL_MIN = 0.0
PIXEL_MAX = 255.0


def calibration_pixels(x_train: np.ndarray, count: int) -> np.ndarray:
    """``count`` training images spread over the split at a fixed stride.

    Reproducible, and not just the first class of a class-sorted file. Export calibrates its int8
    files on these, and the sensitivity analysis scores the same pick.
    """
    count = min(count, len(x_train))
    picks = np.linspace(0, len(x_train) - 1, count).round().astype(int) if count else []
    return np.asarray(x_train[picks])


def model_inputs(pixels: np.ndarray, norm: Normalization, raw_input: bool) -> np.ndarray:
    """What the exported model takes for these raw pixels: float32, normalised unless raw."""
    if raw_input:
        return np.asarray(pixels, dtype=np.float32)
    return norm.apply(pixels)


def calibration_inputs(pixels: np.ndarray, norm: Normalization, raw_input: bool) -> np.ndarray:
    """Float32 model inputs for calibration; for raw input, spanning exactly [0, 255]."""
    inputs = model_inputs(pixels, norm, raw_input).copy()
    if raw_input and len(inputs):
        flat = inputs[0].reshape(-1)
        flat[0] = PIXEL_MIN
        flat[-1] = PIXEL_MAX
    return inputs


def raw_input_quantization(io_dtype: str) -> dict[str, float | int]:
    """The input quantisation a raw-pixel integer model must have (checked after conversion)."""
    return {"scale": 1.0, "zero_point": -128 if io_dtype == "int8" else 0}
