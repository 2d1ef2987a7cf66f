import numpy as np
import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.normalization import Normalization, parse_normalization


def test_named_normalizations_map_pixels_as_documented():
    pixels = np.array([[[[0, 128, 255]]]], dtype=np.uint8)
    np.testing.assert_allclose(parse_normalization("unit").apply(pixels), [[[[0, 128 / 255, 1]]]])
    np.testing.assert_allclose(parse_normalization("raw").apply(pixels), pixels)
    standard = parse_normalization("standard", mean=np.array([0.5]), std=np.array([0.25]))
    np.testing.assert_allclose(standard.apply(pixels), (pixels / 255 - 0.5) / 0.25, atol=1e-6)


def test_explicit_form_per_channel():
    norm = parse_normalization("scale=1,mean=127.5,127.5,127.5,std=127.5,127.5,127.5")
    assert norm.name == "custom" and norm.mean == (127.5,) * 3
    x = norm.apply(np.full((1, 2, 2, 3), 255, dtype=np.uint8))
    np.testing.assert_allclose(x, 1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unitt", "unknown normalization 'unitt'"),
        ("scale=a", "needs numbers"),
        ("offset=3", "unknown normalization key 'offset'"),
        ("scale=1,2", "scale takes one number"),
        ("std=0", "std must be > 0"),
        ("standard", "needs a dataset"),
    ],
)
def test_bad_normalizations_name_the_value(text, message):
    with pytest.raises(EdgesmithError, match=message):
        parse_normalization(text)


def test_round_trip_and_channel_check():
    norm = parse_normalization("scale=0.5,mean=1,2,3,std=4,5,6")
    assert Normalization.from_dict(norm.to_dict()) == norm
    norm.check_channels(3)
    with pytest.raises(EdgesmithError, match="3 values but the input has 1 channel"):
        norm.check_channels(1)
    with pytest.raises(EdgesmithError, match="needs the keys"):
        Normalization.from_dict({"name": "unit"})
