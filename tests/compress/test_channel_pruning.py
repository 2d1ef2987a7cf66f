import numpy as np
import pytest

from edgesmith.compress.config import ChannelPruneConfig
from edgesmith.core.errors import EdgesmithError


def _randomise_bn(model, rng):
    from edgesmith.tfkeras.backend import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.3, beta.shape).astype("float32"),
                    rng.normal(0, 0.3, mean.shape).astype("float32"),
                    rng.uniform(0.5, 1.5, var.shape).astype("float32"),
                ]
            )


def _silence_removed_channels(model, plan):
    """Zero every consumer's weights that read a removed channel: those channels then have
    no effect, so the rebuilt thinner model must compute exactly what this one computes.

    A nested model is silenced in the plan's flattened copy, which the caller compares."""
    source = plan.model if plan.model is not None else model
    for name in plan.layouts:
        layer = source.get_layer(name)
        kind = type(layer).__name__
        if kind not in ("Conv1D", "Conv2D", "Dense", "SeparableConv2D", "Conv2DTranspose"):
            continue
        weights = layer.get_weights()
        axis = -1 if kind.endswith("Transpose") else -2  # depthwise kernel first if separable
        removed = np.setdiff1d(np.arange(weights[0].shape[axis]), plan.input_rows(name))
        np.moveaxis(weights[0], axis, 0)[removed] = 0
        layer.set_weights(weights)
    return source


@pytest.mark.parametrize(
    ("name", "shape"),
    [("resnet8", (16, 16, 3)), ("dscnn", (16, 16, 3)), ("seed_cnn", (32, 32, 3))],
)
def test_rebuilt_model_computes_the_surviving_subnetwork(name, shape):
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.model_stats import count_macs, count_params
    from edgesmith.train.zoo import build_model

    rng = np.random.default_rng(0)
    model = build_model(name, shape, 5)
    _randomise_bn(model, rng)
    plan = cp.choose(model, cp.analyse(model), 0.5, "l1", 1)
    _silence_removed_channels(model, plan)
    thin = cp.rebuild(model, plan)
    x = rng.normal(size=(4, *shape)).astype("float32")
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), atol=1e-5)
    assert count_macs(thin) < 0.4 * count_macs(model)
    assert count_params(thin) < 0.4 * count_params(model)
    assert thin.output_shape == model.output_shape


def test_residual_groups_are_tied_and_the_output_is_kept():
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.train.zoo import build_model

    model = build_model("resnet8", (16, 16, 3), 5)
    plan = cp.analyse(model)
    names = {plan.groups[i].name: plan.groups[i] for i in plan.prunable()}
    # the stem and the first block's second conv feed one Add: one group, pruned together
    stage1 = plan.groups[plan.space_of["stem_conv"]]
    assert plan.space_of["stage1_block1_conv2"] == plan.space_of["stem_conv"]
    assert set(stage1.producers) == {"stem_conv", "stage1_block1_conv2"}
    assert {"stem_bn", "stage1_block1_bn2"} <= set(stage1.members)
    assert plan.groups[plan.space_of["logits"]].fixed  # the classes are never pruned
    assert "logits" not in names and len(names) == 6


@pytest.mark.parametrize(
    ("fraction", "round_to", "widths"),
    [
        (0.5, 1, [8, 8, 16, 16, 32, 32]),
        (0.3, 8, [8, 8, 24, 24, 48, 48]),
        # a 16-channel group cannot keep a smaller multiple of 16: it stays whole, never 1 wide
        (0.5, 16, [16, 16, 16, 16, 32, 32]),
        (0.9, 16, [16, 16, 16, 16, 16, 16]),
    ],
)
def test_round_to_keeps_a_multiple_of_channels(fraction, round_to, widths):
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.train.zoo import build_model

    model = build_model("resnet8", (16, 16, 3), 5)
    plan = cp.choose(model, cp.analyse(model), fraction, "l1", round_to)
    assert [after for _, after in plan.summary().values()] == widths


@pytest.mark.parametrize(
    ("widths", "mac_reduction", "expected"),
    [
        # named groups get exactly their count (any producer of a residual group names it)
        ({"stem_conv": 16, "stage2_block1_conv2": 16}, None, [16, 16, 32, 16, 64, 64]),
        ({"stage1_block1_conv2": 5}, None, [5, 16, 32, 32, 64, 64]),
        # with a MAC target, the fraction is searched over the other groups only
        ({"stem_conv": 16, "stage1_block1_conv1": 16}, 0.5, [16, 16, 8, 8, 24, 24]),
    ],
)
def test_widths_set_named_groups_exactly(widths, mac_reduction, expected):
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.model_stats import count_macs
    from edgesmith.train.zoo import build_model

    model = build_model("resnet8", (16, 16, 3), 5)
    config = ChannelPruneConfig(widths=widths, mac_reduction=mac_reduction, round_to=8)
    plan, _ = cp.plan_for(model, config)
    assert [after for _, after in plan.summary().values()] == expected
    thin = cp.rebuild(model, plan)
    assert thin.get_layer("stage2_block1_conv2").filters == expected[3]
    if mac_reduction:
        assert count_macs(thin) <= (1 - mac_reduction) * count_macs(model)


@pytest.mark.parametrize(
    ("widths", "message"),
    [
        ({"nope": 8}, r"widths names 'nope', which produces no channel group; .*stem_conv \(16\)"),
        ({"stem_conv": 17}, r"widths\['stem_conv'\] is 17 channels; its group has 16"),
        ({"logits": 2}, r"widths\['logits'\]: its group keeps every channel \(softmax"),
        ({"stem_conv": 8, "stage1_block1_conv2": 4}, "two counts: 8 and 4"),
    ],
)
def test_bad_widths_name_the_group(widths, message):
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.train.zoo import build_model

    model = build_model("resnet8", (16, 16, 3), 5)
    with pytest.raises(EdgesmithError, match=message):
        cp.plan_for(model, ChannelPruneConfig(widths=widths))


def test_depthwise_follows_its_input_channels():
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.train.zoo import build_model

    model = build_model("dscnn", (16, 16, 3), 5)
    plan = cp.choose(model, cp.analyse(model), 0.25, "bn", 4)
    thin = cp.rebuild(model, plan)
    for layer in thin.layers:
        if type(layer).__name__ == "DepthwiseConv2D":
            assert layer.depthwise_kernel.shape[2] == layer.input_shape[-1]
    widths = [n for _, n in plan.summary().values()]
    assert all(w % 4 == 0 for w in widths) and widths[0] == 24


def test_concatenated_inputs_shrink_and_their_consumers_read_the_matching_rows():
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.backend import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(8, 3, padding="same", name="b")(inputs)
    c = keras.layers.Conv2D(8, 3, padding="same", name="c")(a)
    x = keras.layers.Concatenate(name="cat")([c, b])
    x = keras.layers.BatchNormalization(name="cat_bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    plan = cp.analyse(model)
    assert sorted(plan.groups[i].name for i in plan.prunable()) == ["a", "b", "c"]
    plan.keep = {plan.space_of["c"]: np.array([1, 5]), plan.space_of["b"]: np.array([0, 7])}
    np.testing.assert_array_equal(plan.input_rows("out"), [1, 5, 8, 15])
    _silence_removed_channels(model, plan)
    thin = cp.rebuild(model, plan)
    assert thin.get_layer("cat_bn").gamma.shape == (4,)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), atol=1e-5)


def _randomised(model):
    _randomise_bn(model, np.random.default_rng(1))
    return model


def _tiny_densenet(keras):
    """Two DenseNet blocks (BN-ReLU-1x1-BN-ReLU-3x3, concatenated) and a transition."""
    layers = keras.layers
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(inputs)
    for block in (1, 2):
        for i in (1, 2):
            y = layers.BatchNormalization(name=f"d{block}_{i}_bn1")(x)
            y = layers.Activation("relu")(y)
            y = layers.Conv2D(16, 1, use_bias=False, name=f"d{block}_{i}_conv1")(y)
            y = layers.BatchNormalization(name=f"d{block}_{i}_bn2")(y)
            y = layers.Activation("relu")(y)
            y = layers.Conv2D(8, 3, padding="same", use_bias=False, name=f"d{block}_{i}_conv2")(y)
            x = layers.Concatenate(name=f"d{block}_{i}_concat")([x, y])
        if block == 1:
            x = layers.BatchNormalization(name="transition_bn")(x)
            x = layers.Activation("relu")(x)
            x = layers.Conv2D(16, 1, use_bias=False, name="transition_conv")(x)
            x = layers.AveragePooling2D(2)(x)
    x = layers.BatchNormalization(name="final_bn")(x)
    x = layers.GlobalAveragePooling2D()(layers.Activation("relu")(x))
    return keras.Model(inputs, layers.Dense(5, name="logits")(x), name="tiny_densenet")


def _tiny_bottleneck_resnet(keras):
    """ResNet-50's shape in miniature: 7x7 stem, max-pool, bottleneck blocks, projections."""
    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    x = layers.ZeroPadding2D(3)(inputs)
    x = layers.Conv2D(16, 7, strides=2, name="conv1_conv")(x)
    x = layers.Activation("relu")(layers.BatchNormalization(name="conv1_bn")(x))
    x = layers.MaxPooling2D(3, strides=2)(layers.ZeroPadding2D(1)(x))
    for stage, (width, stride) in enumerate([(8, 1), (16, 2)], start=2):
        for block in (1, 2):
            name = f"conv{stage}_block{block}"
            s = stride if block == 1 else 1
            shortcut = x
            if block == 1:
                shortcut = layers.Conv2D(4 * width, 1, strides=s, name=f"{name}_0_conv")(x)
                shortcut = layers.BatchNormalization(name=f"{name}_0_bn")(shortcut)
            y = layers.Conv2D(width, 1, strides=s, name=f"{name}_1_conv")(x)
            y = layers.Activation("relu")(layers.BatchNormalization(name=f"{name}_1_bn")(y))
            y = layers.Conv2D(width, 3, padding="same", name=f"{name}_2_conv")(y)
            y = layers.Activation("relu")(layers.BatchNormalization(name=f"{name}_2_bn")(y))
            y = layers.Conv2D(4 * width, 1, name=f"{name}_3_conv")(y)
            y = layers.BatchNormalization(name=f"{name}_3_bn")(y)
            x = layers.Activation("relu")(layers.Add()([shortcut, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10, name="predictions")(x), name="tiny_resnet50")


def _application(name: str, **options):
    """A builder of keras.applications' ``name``: untrained, 32x32x3, 10 classes as logits."""

    def build(k):
        return getattr(k.applications, name)(
            input_shape=(32, 32, 3), weights=None, classes=10, classifier_activation=None, **options
        )

    return build


# name: (builder taking the keras module, a layer that must get thinner)
ZOO = {
    "mobilenet_v2": (_application("MobileNetV2", alpha=0.35), "block_1_expand"),
    "mobilenet": (_application("MobileNet", alpha=0.25), "conv_pw_5"),
    "efficientnet_b0": (_application("EfficientNetB0"), "block2a_se_expand"),
    "resnet50_like": (_tiny_bottleneck_resnet, "conv2_block1_0_conv"),
    "densenet_like": (_tiny_densenet, "d1_1_conv2"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ZOO))
def test_foreign_architectures_prune_to_the_surviving_subnetwork(name):
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.backend import keras
    from edgesmith.tfkeras.model_stats import count_macs

    keras.utils.set_random_seed(0)
    build, thinner = ZOO[name]
    model = _randomised(build(keras))
    plan = cp.analyse(model)
    # every conv's channels can shrink but the classifier's (ReLU6, ZeroPadding2D, depthwise,
    # Rescaling/Normalization, SE Reshape + broadcast Multiply, Concatenate, Dropout all pass)
    fixed = {g.name: g.fixed for g in plan.groups if g.producers and g.fixed}
    assert list(fixed.values()) == ["model output"], fixed
    cp.choose(model, plan, 0.5, "bn", 1)
    _silence_removed_channels(model, plan)
    thin = cp.rebuild(model, plan)
    assert thin.get_layer(thinner).filters <= model.get_layer(thinner).filters // 2
    macs = count_macs(thin)
    assert macs == cp._thin_macs(model, plan)  # the MAC search's shortcut is exact
    assert macs < 0.45 * count_macs(model)
    x = np.random.default_rng(0).normal(size=(2, *model.input_shape[1:])).astype("float32")
    reference = model(x).numpy()
    np.testing.assert_allclose(thin(x).numpy(), reference, atol=1e-4 * np.abs(reference).max())


@pytest.mark.slow
def test_a_plan_that_removes_nothing_rebuilds_the_same_model():
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.backend import keras

    keras.utils.set_random_seed(0)
    model = _randomised(ZOO["mobilenet_v2"][0](keras))
    plan = cp.choose(model, cp.analyse(model), 0.0, "l1", 1)
    assert plan.keep == {}
    same = cp.rebuild(model, plan)
    assert [w.shape for w in same.weights] == [w.shape for w in model.weights]
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(same(x).numpy(), model(x).numpy())


@pytest.mark.slow
def test_se_block_ties_the_gate_to_the_feature_map():
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.backend import keras

    model = ZOO["efficientnet_b0"][0](keras)
    plan = cp.analyse(model)
    group = plan.groups[plan.space_of["block2a_expand_conv"]]
    assert plan.space_of["block2a_se_expand"] == plan.space_of["block2a_expand_conv"]
    assert {"block2a_expand_conv", "block2a_se_expand"} <= set(group.producers)
    assert {"block2a_dwconv", "block2a_bn"} <= set(group.members)
    assert {"block2a_se_reduce", "block2a_project_conv"} <= {c for c, _ in group.consumers}
    norm = next(layer.name for layer in model.layers if type(layer).__name__ == "Normalization")
    assert plan.groups[plan.space_of[norm]].fixed == "model input"


def test_flatten_and_reshape_heads():
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.backend import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", name="conv")(inputs)
    flat = layers.Dense(6, name="from_flatten")(layers.Flatten()(x))
    folded = layers.Reshape((4, 32), name="fold")(x)  # four pixels a row: p * 8 + c
    folded = layers.Dense(6, name="from_fold")(layers.Flatten()(folded))
    pooled = layers.GlobalAveragePooling2D(keepdims=True)(x)
    pooled = layers.Reshape((1, 1, 8), name="se_reshape")(layers.Flatten()(pooled))
    pooled = layers.Reshape((6,))(layers.Conv2D(6, 1, name="conv_preds")(pooled))
    model = keras.Model(inputs, layers.Add()([flat, folded, pooled]))
    plan = cp.analyse(model)
    assert plan.prunable() == [plan.space_of["conv"]]
    plan.keep = {plan.space_of["conv"]: np.array([0, 3, 4])}
    np.testing.assert_array_equal(plan.input_rows("from_flatten")[:6], [0, 3, 4, 8, 11, 12])
    _silence_removed_channels(model, plan)
    thin = cp.rebuild(model, plan)
    assert thin.get_layer("fold").target_shape == (4, 12)
    assert thin.get_layer("se_reshape").target_shape == (1, 1, 3)
    assert thin.get_layer("from_flatten").kernel.shape == (16 * 3, 6)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), atol=1e-5)


def test_separable_transposed_and_1d_convs():
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.backend import keras
    from edgesmith.tfkeras.model_stats import count_macs

    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, padding="same", name="a")(inputs)
    x = layers.PReLU(name="prelu")(x)
    x = layers.SeparableConv2D(12, 3, depth_multiplier=2, padding="same", name="sep")(x)
    x = layers.UpSampling2D()(x)
    x = layers.Conv2DTranspose(6, 3, strides=2, padding="same", name="up")(x)
    x = layers.Reshape((32 * 32, 6))(x)
    x = layers.Conv1D(10, 3, strides=8, name="temporal")(x)
    x = layers.GlobalMaxPooling1D()(layers.LeakyReLU()(x))
    model = keras.Model(inputs, layers.Dense(2, name="out")(x))
    plan = cp.choose(model, cp.analyse(model), 0.5, "l2", 1)
    assert plan.summary() == {"a": [8, 4], "sep": [12, 6], "up": [6, 3], "temporal": [10, 5]}
    _silence_removed_channels(model, plan)
    thin = cp.rebuild(model, plan)
    assert thin.get_layer("sep").pointwise_kernel.shape == (1, 1, 8, 6)  # 4 inputs x 2
    assert thin.get_layer("prelu").alpha.shape == (8, 8, 4)
    assert count_macs(thin) == cp._thin_macs(model, plan)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), atol=1e-5)


def _nested_model(keras):
    """A functional backbone (frozen BN: called with training=False) and a Sequential head,
    whose layer names clash."""
    layers = keras.layers
    inner = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, padding="same", name="conv")(inner)
    x = layers.ReLU(6.0)(layers.BatchNormalization(name="bn")(x))
    y = layers.Conv2D(8, 3, padding="same", name="conv2")(x)
    backbone = keras.Model(inner, layers.Add()([x, y]), name="backbone")
    head = keras.Sequential(
        [layers.Conv2D(16, 1, name="conv"), layers.ReLU(), layers.GlobalAveragePooling2D()],
        name="head",
    )
    inputs = keras.Input((16, 16, 3), name="image")
    x = head(backbone(inputs, training=False))
    x = layers.Dense(12, activation="relu", name="fc")(x)
    return keras.Model(inputs, layers.Dense(3, name="logits")(x), name="nested")


def test_nested_models_are_flattened_and_pruned():
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.backend import keras
    from edgesmith.tfkeras.model_stats import count_macs

    keras.utils.set_random_seed(0)
    model = _randomised(_nested_model(keras))
    _randomise_bn(model.get_layer("backbone"), np.random.default_rng(2))
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    reference = model(x).numpy()
    plan = cp.choose(model, cp.analyse(model), 0.5, "l1", 1)
    assert plan.flattened == ["backbone", "head"]
    assert set(plan.summary()) == {"conv", "head_conv", "fc"}  # the head's conv was renamed
    assert {name: after for name, (_, after) in plan.summary().items()} == {
        "conv": 4,
        "head_conv": 8,
        "fc": 6,
    }
    np.testing.assert_allclose(plan.model(x).numpy(), reference, atol=1e-6)
    flat = _silence_removed_channels(model, plan)
    thin = cp.rebuild(model, plan)
    assert count_macs(thin) < 0.4 * count_macs(model)
    np.testing.assert_allclose(thin(x).numpy(), flat(x).numpy(), atol=1e-5)
    # the backbone's BatchNorm still runs on its moving statistics while training
    np.testing.assert_allclose(
        thin(x, training=True).numpy(), thin(x, training=False).numpy(), atol=1e-6
    )


def test_layers_it_does_not_understand_keep_their_channels():
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.backend import keras

    layers = keras.layers

    class Scale(layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(name="w", shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w

    class Block(keras.Model):  # subclassed: its graph cannot be read
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = layers.Conv2D(8, 1)

        def call(self, x):
            return self.conv(x)

        def get_config(self):
            return {"name": self.name}

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    a = layers.Conv2D(8, 3, name="a")(inputs)
    b = layers.Conv2D(8, 3, name="b")(Scale(name="scale")(a))
    c = layers.Conv2D(8, 1, name="c")(Block(name="sub")(b))
    d = keras.Sequential([layers.Conv2D(8, 1, name="d")], name="wrap")(c)  # flattened
    shared = layers.Conv2D(8, 1, name="shared")
    e = layers.Conv2D(8, 1, name="e")(layers.Add()([shared(c), shared(d)]))
    f = layers.Conv2D(8, 1, name="f")(layers.LayerNormalization(name="ln")(e))
    g = layers.Conv2D(8, 1, name="g")(layers.Lambda(lambda t: t[..., ::-1], name="flip")(f))
    outputs = layers.Dense(2, name="out")(layers.GlobalAveragePooling2D()(g))
    model = keras.Model(inputs, outputs)
    plan = cp.choose(model, cp.analyse(model), 0.5, "l1", 1)
    assert [plan.groups[i].name for i in plan.prunable()] == ["g"]
    whole = cp.kept_whole(plan)
    assert whole["a"] == whole["scale"] == "scale (Scale) is not channel-transparent"
    assert "nested model sub (Block) kept whole: a subclassed model" in whole["b"]
    assert whole["c"] == whole["d"] == whole["shared"] == "shared (Conv2D) is called more than once"
    assert whole["e"] == whole["ln"] == "ln (LayerNormalization) is not channel-transparent"
    assert whole["f"] == "flip (Lambda) is not channel-transparent"
    assert plan.flattened == ["wrap"]
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(plan.model(x).numpy(), model(x).numpy(), atol=1e-6)
    flat = _silence_removed_channels(model, plan)
    thin = cp.rebuild(model, plan)  # the custom classes come back without registration
    assert thin.get_layer("g").filters == 4
    np.testing.assert_allclose(thin(x).numpy(), flat(x).numpy(), atol=1e-5)


def _kitchen_sink(keras):
    """A small model with every edge-model construct at once, quick to convert to TFLite."""
    layers = keras.layers
    inputs = keras.Input((16, 16, 3))
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = layers.Normalization(mean=0.5, variance=0.25)(x)
    x = layers.ZeroPadding2D(1)(x)
    x = layers.Conv2D(16, 3, strides=2, use_bias=False, name="stem")(x)
    x = layers.ReLU(6.0)(layers.BatchNormalization(name="stem_bn")(x))
    y = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    y = layers.Activation("swish")(layers.BatchNormalization(name="dw_bn")(y))
    se = layers.Reshape((1, 1, 16))(layers.GlobalAveragePooling2D()(y))
    se = layers.Conv2D(4, 1, activation="swish", name="se_reduce")(se)
    se = layers.Conv2D(16, 1, activation="sigmoid", name="se_expand")(se)
    y = layers.Multiply()([y, se])
    y = layers.Conv2D(16, 1, name="project")(y)
    x = layers.Add()([x, layers.Dropout(0.2, noise_shape=(None, 1, 1, 1))(y)])
    hard = layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)  # TFOpLambda layers, as in MobileNetV3
    branch = keras.Sequential([layers.Conv2D(8, 3, padding="same", name="branch")], name="seq")
    x = layers.Concatenate()([layers.Multiply()([x, hard]), branch(x)])
    x = layers.Conv2D(24, 1, activation="relu", name="head")(x)
    x = layers.Dropout(0.2)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, layers.Dense(4, name="logits")(x), name="kitchen_sink")


@pytest.mark.slow
def test_rebuilt_model_trains_and_converts_to_int8():
    from ai_edge_litert.interpreter import Interpreter

    from edgesmith.compress import channel_pruning as cp
    from edgesmith.export.tflite import convert
    from edgesmith.tfkeras.backend import keras

    keras.utils.set_random_seed(0)
    model = _randomised(_kitchen_sink(keras))
    x = np.random.default_rng(0).uniform(0, 255, size=(8, 16, 16, 3)).astype("float32")
    plan = cp.choose(model, cp.analyse(model), 0.5, "l2", 1)
    assert plan.flattened == ["seq"]
    assert {name: after for name, (_, after) in plan.summary().items()} == {
        "stem": 8,
        "se_reduce": 2,
        "branch": 4,
        "head": 12,
    }
    _silence_removed_channels(model, plan)
    thin = cp.rebuild(model, plan)
    np.testing.assert_allclose(thin(x).numpy(), plan.model(x).numpy(), atol=1e-4)
    thin.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = thin.fit(x, np.arange(8) % 4, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    interpreter = Interpreter(model_content=convert(thin, "int8", calibration=x))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], np.zeros((1, 16, 16, 3), np.int8))
    interpreter.invoke()
    assert interpreter.get_tensor(out["index"]).shape == (1, 4)


def test_prune_channels_end_to_end(digits_artifact, tmp_path, quiet):
    from edgesmith.compress.pruning import prune
    from edgesmith.tfkeras.model_io import load_keras_model

    config = ChannelPruneConfig(mac_reduction=0.5, epochs=2)
    artifact = prune(digits_artifact, config, tmp_path / "c", report=quiet)
    metrics = artifact.metrics
    assert artifact.manifest.technique == "prune-channels"
    assert metrics.mac_reduction >= 0.5 and metrics.macs <= 0.5 * metrics.macs_source
    assert metrics.params < metrics.params_source
    model, _ = load_keras_model(artifact.model_path)
    assert model.get_layer("stage3_block1_conv2").filters < 64
    before = (digits_artifact / "model.keras").stat().st_size
    assert artifact.model_path.stat().st_size < 0.75 * before  # smaller without gzip
    assert metrics.accuracy > 0.5
    assert artifact.manifest.config["channel_fraction"] == pytest.approx(0.28, abs=0.05)


@pytest.mark.slow
def test_prune_channels_flattens_a_nested_model_artifact(tmp_path, quiet):
    from edgesmith.compress.pruning import prune
    from edgesmith.tfkeras.backend import keras
    from edgesmith.tfkeras.model_io import load_keras_model
    from edgesmith.train import TrainConfig, train

    layers = keras.layers
    keras.utils.set_random_seed(0)
    inner = keras.Input((8, 8, 1))
    x = layers.Conv2D(16, 3, padding="same", name="conv")(inner)
    x = layers.ReLU()(layers.BatchNormalization(momentum=0.9, name="bn")(x))
    backbone = keras.Model(inner, layers.Add()([x, layers.Conv2D(16, 1, name="conv2")(x)]))
    head = keras.Sequential([layers.Conv2D(32, 1, name="conv"), layers.GlobalAveragePooling2D()])
    inputs = keras.Input((8, 8, 1), name="input")
    outputs = layers.Dense(10, activation="softmax", name="probs")(head(backbone(inputs)))
    keras.Model(inputs, outputs).save(tmp_path / "nested.keras")
    config = TrainConfig(data="digits", model=str(tmp_path / "nested.keras"), epochs=1)
    train(config, tmp_path / "a", report=quiet)

    config = ChannelPruneConfig(sparsity=0.5, epochs=1)
    artifact = prune(tmp_path / "a", config, tmp_path / "p", report=quiet)
    pruning = artifact.manifest.pruning
    assert list(pruning.flattened) == [backbone.name, head.name]
    assert pruning.kept_whole == {"probs": "model output"}
    assert artifact.metrics.channels == {
        "conv": [16, 8],
        f"{head.name}_conv": [32, 16],
    }
    model, _ = load_keras_model(artifact.model_path)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert model.get_layer("conv2").filters == 8


def test_unreachable_mac_target(digits_artifact, tmp_path, quiet):
    from edgesmith.compress.pruning import prune

    config = ChannelPruneConfig(mac_reduction=0.999)
    with pytest.raises(EdgesmithError, match="mac_reduction 0.999 is out of reach"):
        prune(digits_artifact, config, tmp_path / "x", report=quiet)
    assert not (tmp_path / "x.partial").exists()


def test_a_subclassed_model_is_refused_by_name():
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.backend import keras

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3)

        def call(self, x):
            return self.conv(x)

    net = Net()
    net(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(EdgesmithError, match="subclassed Net: channel pruning reads the layer"):
        cp.analyse(net)


def test_the_same_widths_give_the_same_network_pruned_or_trained_thin():
    """``train --widths`` and ``prune --structure channels --widths``: one meaning."""
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.train.zoo import build_model

    widths = {
        "stem_conv": 8,
        "stage1_block1_conv1": 8,
        "stage2_block1_conv2": 16,
        "stage3_block1_conv1": 24,
    }
    dense = build_model("resnet8", (16, 16, 3), 5)
    plan, _ = cp.plan_for(dense, ChannelPruneConfig(widths=widths))
    pruned = cp.rebuild(dense, plan)
    thin = build_model("resnet8", (16, 16, 3), 5, widths=widths)

    def shapes(model):
        return {layer.name: [tuple(w.shape) for w in layer.weights] for layer in model.layers}

    assert shapes(thin) == shapes(pruned)
