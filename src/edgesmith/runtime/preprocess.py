"""From images to the model's input tensor and from its output tensor to floats.

Raw pixels are normalised as the manifest says (unless the model folds that into its graph,
``raw_input``), then quantised with the **tensor's own** scale and zero point: the tensor is
what the runtime will read, so it is the authority, not a record written beside it.
"""

from __future__ import annotations

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.normalization import Normalization
from edgesmith.runtime.runner import TensorInfo


def _hwc(tensor: TensorInfo) -> tuple[int | None, ...]:
    return tuple(tensor.shape[1:])


def _fmt(shape: tuple) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


def as_batch(images: object, tensor: TensorInfo, *, where: str = "images") -> np.ndarray:
    """Bring images to a batch shaped like the model input, ``(N, *tensor.shape[1:])``.

    Accepts a batch ``(N, H, W, C)``, one image ``(H, W, C)``, and for one-channel models also
    ``(N, H, W)`` and ``(H, W)``.

    Raises:
        EdgesmithError: for a non-numeric dtype, an empty batch, or a shape that fits neither.
    """
    array = np.asarray(images)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise EdgesmithError(
            f"{where}: expected numeric pixels (uint8 or float). Received dtype {array.dtype}"
        )
    want = _hwc(tensor)

    def fits(shape: tuple) -> bool:
        return len(shape) == len(want) and all(
            w is None or w == s for w, s in zip(want, shape, strict=True)
        )

    if fits(array.shape[1:]):
        batch = array
    elif fits(array.shape):
        batch = array[np.newaxis]
    elif want[-1:] == (1,) and fits((*array.shape[1:], 1)):
        batch = array[..., np.newaxis]
    elif want[-1:] == (1,) and fits((*array.shape, 1)):
        batch = array[np.newaxis, ..., np.newaxis]
    else:
        raise EdgesmithError(
            f"{where}: shape {array.shape} does not fit the model input {_fmt(want)} "
            f"(expected (N, {', '.join(_fmt((d,)) for d in want)}))"
        )
    if len(batch) == 0:
        raise EdgesmithError(f"{where}: holds no images")
    return batch


def check_pixels(pixels: np.ndarray, *, where: str = "images") -> None:
    """Refuse values outside the raw pixel range [0, 255].

    Raises:
        EdgesmithError: naming the range found.
    """
    if pixels.dtype == np.uint8:
        return
    low, high = float(pixels.min()), float(pixels.max())
    if low < 0 or high > 255 or not np.isfinite(low + high):
        raise EdgesmithError(
            f"{where}: pixel values span [{low:g}, {high:g}]; expected raw pixels in [0, 255]. "
            "Give the images before normalisation (model.run takes prepared inputs)."
        )


def quantize(x: np.ndarray, tensor: TensorInfo) -> np.ndarray:
    """Real values to the tensor's integer dtype: ``round(x / scale) + zero_point``, clipped."""
    info = np.iinfo(tensor.dtype)
    q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(tensor.scale)) + tensor.zero_point
    return np.clip(q, info.min, info.max).astype(tensor.dtype)


def dequantize(q: np.ndarray, tensor: TensorInfo) -> np.ndarray:
    """A raw output to float32: ``(q - zero_point) * scale`` when quantised, else a cast."""
    if not tensor.quantized:
        return np.asarray(q, dtype=np.float32)
    return (
        (q.astype(np.float32) - np.float32(tensor.zero_point)) * np.float32(tensor.scale)
    ).astype(np.float32)


def to_tensor_dtype(x: np.ndarray, tensor: TensorInfo, *, where: str = "input") -> np.ndarray:
    """Real-valued input to the tensor's dtype: quantised if it is, cast if it is float.

    Raises:
        EdgesmithError: for an integer tensor that carries no scale (nothing to quantise with).
    """
    if tensor.quantized:
        return quantize(x, tensor)
    if np.issubdtype(tensor.dtype, np.floating):
        return np.ascontiguousarray(x, dtype=tensor.dtype)
    raise EdgesmithError(
        f"{where}: the model takes {tensor.dtype} without a quantisation scale; give inputs "
        f"already as {tensor.dtype} (model.run) or a model with quantisation parameters"
    )


def pixels_to_input(
    pixels: np.ndarray,
    tensor: TensorInfo,
    *,
    normalization: Normalization | None,
    raw_input: bool,
) -> np.ndarray:
    """Raw pixels ``(N, H, W, C)`` to the model's input tensor.

    Args:
        pixels: raw pixels in [0, 255] (uint8 or float).
        tensor: the model's input tensor (dtype, scale and zero point are used).
        normalization: how the model expects pixels to be scaled; ``None`` means the images are
            taken as model inputs already (a foreign model with no metadata).
        raw_input: the model folds normalisation into its graph and takes pixels as they are
            (``normalization`` is then only a record of what the graph does).

    Returns:
        A contiguous array of the tensor's dtype.
    """
    if raw_input:
        check_pixels(pixels)
        if tensor.quantized or np.issubdtype(tensor.dtype, np.floating):
            return to_tensor_dtype(pixels.astype(np.float32), tensor)
        if tensor.dtype == np.int8:  # pixels shifted into int8's range, the usual device form
            return (pixels.astype(np.int16) - 128).astype(np.int8)
        return np.ascontiguousarray(pixels, dtype=tensor.dtype)
    if normalization is None:
        if pixels.dtype == tensor.dtype:
            return np.ascontiguousarray(pixels)
        return to_tensor_dtype(pixels, tensor)
    check_pixels(pixels)
    return to_tensor_dtype(normalization.apply(pixels), tensor)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def looks_like_probabilities(rows: np.ndarray, tolerance: float = 0.02) -> bool:
    """True when every row is non-negative and sums to 1 (within ``tolerance``)."""
    return bool(np.all(rows >= -tolerance) and np.allclose(rows.sum(axis=-1), 1.0, atol=tolerance))
