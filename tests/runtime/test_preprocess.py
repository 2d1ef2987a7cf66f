import numpy as np
import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.normalization import parse_normalization
from edgesmith.runtime.preprocess import (
    as_batch,
    dequantize,
    looks_like_probabilities,
    pixels_to_input,
    quantize,
    softmax,
)
from edgesmith.runtime.runner import TensorInfo

INT8 = TensorInfo("x", (None, 4, 4, 3), np.dtype(np.int8), 0.05, 3)
UINT8 = TensorInfo("x", (None, 4, 4, 3), np.dtype(np.uint8), 1 / 255, 0)
FLOAT = TensorInfo("x", (None, 4, 4, 3), np.dtype(np.float32))


def test_quantize_then_dequantize_is_within_half_a_step():
    x = np.linspace(-6, 6, 241, dtype=np.float32)
    q = quantize(x, INT8)
    assert q.dtype == np.int8
    back = dequantize(q, INT8)
    inside = (x >= (-128 - 3) * 0.05) & (x <= (127 - 3) * 0.05)
    assert np.abs(back[inside] - x[inside]).max() <= 0.025 + 1e-6


def test_quantize_clips_to_the_dtype_range():
    q = quantize(np.array([-1e6, 1e6], np.float32), INT8)
    assert q.tolist() == [-128, 127]
    assert quantize(np.array([-5.0, 2.0], np.float32), UINT8).tolist() == [0, 255]


def test_dequantize_float_output_is_a_cast():
    out = dequantize(np.array([[0.25, 0.75]], np.float64), FLOAT)
    assert out.dtype == np.float32 and out.tolist() == [[0.25, 0.75]]


def test_normalised_pixels_quantised_with_the_tensor_parameters():
    norm = parse_normalization("scale=0.00392156862745098,mean=0.5,std=0.25")
    pixels = np.full((1, 4, 4, 3), 200, np.uint8)
    x = pixels_to_input(pixels, INT8, normalization=norm, raw_input=False)
    real = (200 / 255 - 0.5) / 0.25
    assert x.dtype == np.int8
    assert int(x[0, 0, 0, 0]) == int(np.rint(real / 0.05) + 3)


def test_raw_input_models_take_pixels():
    pixels = np.array([0, 1, 128, 255], np.uint8).reshape(1, 1, 1, 4)
    tensor = TensorInfo("x", (None, 1, 1, 4), np.dtype(np.int8))  # no quantisation recorded
    assert pixels_to_input(pixels, tensor, normalization=None, raw_input=True).ravel().tolist() == [
        -128,
        -127,
        0,
        127,
    ]
    shifted = TensorInfo("x", (None, 1, 1, 4), np.dtype(np.int8), 1.0, -128)
    assert pixels_to_input(
        pixels, shifted, normalization=None, raw_input=True
    ).ravel().tolist() == [
        -128,
        -127,
        0,
        127,
    ]
    as_float = TensorInfo("x", (None, 1, 1, 4), np.dtype(np.float32))
    x = pixels_to_input(pixels, as_float, normalization=None, raw_input=True)
    assert x.dtype == np.float32 and x.ravel().tolist() == [0, 1, 128, 255]
    as_uint8 = TensorInfo("x", (None, 1, 1, 4), np.dtype(np.uint8))
    assert pixels_to_input(pixels, as_uint8, normalization=None, raw_input=True).dtype == np.uint8


def test_unquantised_integer_tensor_needs_integer_inputs():
    tensor = TensorInfo("x", (None, 4, 4, 3), np.dtype(np.int8))
    with pytest.raises(EdgesmithError, match="without a quantisation scale"):
        pixels_to_input(
            np.zeros((1, 4, 4, 3), np.float32), tensor, normalization=None, raw_input=False
        )


def test_as_batch_accepts_the_usual_layouts():
    grey = TensorInfo("x", (None, 8, 8, 1), np.dtype(np.float32))
    assert as_batch(np.zeros((5, 8, 8, 1)), grey).shape == (5, 8, 8, 1)
    assert as_batch(np.zeros((8, 8, 1)), grey).shape == (1, 8, 8, 1)
    assert as_batch(np.zeros((5, 8, 8)), grey).shape == (5, 8, 8, 1)
    assert as_batch(np.zeros((8, 8)), grey).shape == (1, 8, 8, 1)
    with pytest.raises(EdgesmithError, match=r"shape \(5, 8, 9\) does not fit"):
        as_batch(np.zeros((5, 8, 9)), grey)


def test_softmax_and_probability_detection():
    logits = np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]])
    probs = softmax(logits)
    np.testing.assert_allclose(probs, [[0.5, 0.5], [0.25, 0.75]], rtol=1e-6)
    assert looks_like_probabilities(probs)
    assert not looks_like_probabilities(logits)
