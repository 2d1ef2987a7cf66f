import numpy as np
import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.tfkeras.model_stats import count_macs
from edgesmith.train.zoo import ZOO, build_model


def test_reference_sizes_on_cifar10_shape():
    resnet8 = build_model("resnet8", (32, 32, 3), 10)
    assert resnet8.count_params() == 78_666  # MLPerf Tiny's ResNet-8
    assert count_macs(resnet8) == 12_501_632  # MLPerf Tiny's 12.5 M; Keras 3 counts the same
    assert count_macs(build_model("resnet20", (32, 32, 3), 10)) == 40_813_184
    assert build_model("seed_cnn", (32, 32, 3), 10).count_params() == 122_570  # the article's
    assert 250_000 < build_model("resnet20", (32, 32, 3), 10).count_params() < 300_000


@pytest.mark.parametrize("name", sorted(ZOO))
@pytest.mark.parametrize(
    ("shape", "classes"), [((8, 8, 1), 10), ((28, 28, 1), 2), ((40, 24, 3), 7)]
)
def test_any_input_shape_and_class_count(name, shape, classes):
    model = build_model(name, shape, classes)
    out = model(np.zeros((2, *shape), np.float32), training=False).numpy()
    assert out.shape == (2, classes)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)  # softmax head
    assert model.get_layer("logits").output_shape == (None, classes)


def test_zoo_names_are_known_without_tensorflow():
    from edgesmith.train.config import MODEL_NAMES

    assert tuple(ZOO) == MODEL_NAMES


def test_unknown_model_lists_the_zoo():
    with pytest.raises(EdgesmithError, match="unknown model 'resnet9': expected one of seed_cnn"):
        build_model("resnet9", (8, 8, 1), 10)


def test_depthwise_macs_are_counted_per_channel():
    from edgesmith.tfkeras.backend import keras

    model = keras.Sequential(
        [keras.Input((4, 4, 2)), keras.layers.DepthwiseConv2D(3, padding="same")]
    )
    assert count_macs(model) == 4 * 4 * 2 * 9


def test_one_dimensional_depthwise_and_separable_macs():
    from edgesmith.tfkeras.backend import keras

    inputs = keras.Input((10, 4))
    x = keras.layers.DepthwiseConv1D(3, padding="same", depth_multiplier=2)(inputs)  # 10*8*3
    x = keras.layers.SeparableConv1D(5, 3, padding="same")(x)  # 10*8*3 + 10*8*5
    model = keras.Model(inputs, x)
    assert count_macs(model) == 10 * 8 * 3 + 10 * 8 * 3 + 10 * 8 * 5
