import numpy as np
import pytest

from edgesmith.compress.config import PruneConfig
from edgesmith.errors import EdgesmithError


def _randomise_bn(model, rng):
    from edgesmith._tensorflow import keras

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
    no effect, so the rebuilt thinner model must compute exactly what this one computes."""
    for index in plan.prunable():
        group = plan.groups[index]
        removed = np.setdiff1d(np.arange(group.size), plan.kept(index))
        for name, positions in group.consumers:
            layer = model.get_layer(name)
            weights = layer.get_weights()
            if weights[0].ndim == 4:
                weights[0][:, :, removed, :] = 0
            else:
                rows = (np.arange(positions)[:, None] * group.size + removed[None, :]).ravel()
                weights[0][rows, :] = 0
            layer.set_weights(weights)


@pytest.mark.parametrize(
    ("name", "shape"),
    [("resnet8", (16, 16, 3)), ("dscnn", (16, 16, 3)), ("seed_cnn", (32, 32, 3))],
)
def test_rebuilt_model_computes_the_surviving_subnetwork(name, shape):
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.train.model_stats import count_macs, count_params
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


def test_concatenate_keeps_its_inputs_whole():
    from edgesmith._tensorflow import keras
    from edgesmith.compress import channel_pruning as cp

    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(8, 3, padding="same", name="b")(inputs)
    c = keras.layers.Conv2D(8, 3, padding="same", name="c")(a)
    x = keras.layers.Concatenate(name="cat")([c, b])
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    plan = cp.analyse(model)
    assert [plan.groups[i].name for i in plan.prunable()] == ["a"]
    assert "cat (Concatenate)" in plan.groups[plan.space_of["b"]].fixed


def test_prune_channels_end_to_end(digits_artifact, tmp_path, quiet):
    from edgesmith.compress.pruning import prune
    from edgesmith.train.model_io import load_keras_model

    config = PruneConfig(structure="channels", mac_reduction=0.5, epochs=2)
    artifact = prune(digits_artifact, config, tmp_path / "c", report=quiet)
    metrics = artifact.manifest["metrics"]
    assert artifact.manifest["technique"] == "prune-channels"
    assert metrics["mac_reduction"] >= 0.5 and metrics["macs"] <= 0.5 * metrics["macs_source"]
    assert metrics["params"] < metrics["params_source"]
    model, _ = load_keras_model(artifact.model_path)
    assert model.get_layer("stage3_block1_conv2").filters < 64
    before = (digits_artifact / "model.keras").stat().st_size
    assert artifact.model_path.stat().st_size < 0.75 * before  # smaller without gzip
    assert metrics["accuracy"] > 0.5
    assert artifact.manifest["config"]["channel_fraction"] == pytest.approx(0.28, abs=0.05)


def test_unreachable_mac_target(digits_artifact, tmp_path, quiet):
    from edgesmith.compress.pruning import prune

    config = PruneConfig(structure="channels", mac_reduction=0.999)
    with pytest.raises(EdgesmithError, match="mac_reduction 0.999 is out of reach"):
        prune(digits_artifact, config, tmp_path / "x", report=quiet)
    assert not (tmp_path / "x.partial").exists()
