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
    from edgesmith.train.config import MODEL_NAMES, RESIZABLE_MODELS
    from edgesmith.train.zoo import RESNETS

    assert tuple(ZOO) == MODEL_NAMES and tuple(RESNETS) == RESIZABLE_MODELS


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


THIN = {
    "stem_conv": 16,
    "stage1_block1_conv1": 8,
    "stage2_block1_conv1": 24,
    "stage2_block1_shortcut": 24,
    "stage3_block1_conv1": 48,
    "stage3_block1_shortcut": 48,
}


def test_widths_build_a_thin_resnet8():
    thin = build_model("resnet8", (32, 32, 3), 10, widths=THIN)
    assert thin.count_params() == 45_498
    assert count_macs(thin) == 7_176_672  # 57% of the dense 12,501,632
    assert thin.get_layer("stage2_block1_conv2").filters == 24  # tied to its shortcut
    assert thin.get_layer("stage1_block1_conv2").filters == 16  # tied to the stem


def test_widths_of_a_resnet20_follow_its_identity_blocks():
    thin = build_model("resnet20", (16, 16, 3), 4, widths={"stage2_block3_conv2": 8})
    for block in (1, 2, 3):  # one group: the stage's shortcut and every block's conv2
        assert thin.get_layer(f"stage2_block{block}_conv2").filters == 8
    assert thin.get_layer("stage2_block1_shortcut").filters == 8
    assert thin.get_layer("stage3_block1_conv1").kernel.shape[2] == 8


@pytest.mark.parametrize(
    ("widths", "message"),
    [
        (
            {"stage1_block1_shortcut": 8},
            "in no channel group of this ResNet: expected some of "
            "stem_conv, stage2_block1_shortcut",
        ),
        ({"stem_conv": 8, "stage1_block1_conv2": 4}, "group of stem_conv two counts: 4 and 8"),
    ],
)
def test_bad_widths_name_the_groups(widths, message):
    with pytest.raises(EdgesmithError, match=message):
        build_model("resnet8", (8, 8, 1), 10, widths=widths)


def test_widths_are_for_the_resnets_only():
    with pytest.raises(EdgesmithError, match="widths resize the zoo's ResNets .* not 'dscnn'"):
        build_model("dscnn", (8, 8, 1), 10, widths={"stem_conv": 8})


def test_zoo_model_is_a_start_for_training():
    from edgesmith.train import TrainConfig

    config = TrainConfig(model="zoo:resnet8-cifar10", data="cifar10")
    assert config.model_file.endswith("resnet8-cifar10/keras/model.keras")
    with pytest.raises(EdgesmithError, match="no pretrained model 'nope'"):
        TrainConfig(model="zoo:nope")
    with pytest.raises(EdgesmithError, match="has trained widths; .* zoo:resnet8-thin-cifar10"):
        TrainConfig(model="zoo:resnet8-cifar10", widths="stem_conv=8")
    with pytest.raises(EdgesmithError, match="trained on normalization 'unit'"):
        TrainConfig(model="zoo:resnet8-cifar10", normalization="raw")
