import pytest

from edgesmith.compress.config import (
    AutotuneConfig,
    ChannelPruneConfig,
    ClusterConfig,
    DistillConfig,
    PruneConfig,
    QatConfig,
    SensitivityConfig,
)
from edgesmith.core.errors import EdgesmithError


@pytest.mark.parametrize(
    ("cls", "values", "message"),
    [
        (PruneConfig, {"sparsity": 1.2}, "sparsity must be in [0.0, 1.0). Received: 1.2"),
        (PruneConfig, {"sparsity": -0.1}, "sparsity must be in [0.0, 1.0). Received: -0.1"),
        (PruneConfig, {}, "unstructured pruning needs a sparsity"),
        (PruneConfig, {"sparsity": 0.7, "structure": "2:4"}, "2:4 sparsity is 0.5"),
        (PruneConfig, {"sparsity": 0.5, "structure": "1:4"}, "structure must be one of"),
        (PruneConfig, {"sparsity": 0.5, "epochs": 0}, "epochs must be a whole number >= 1"),
        (PruneConfig, {"sparsity": 0.5, "skip_layers": 5}, "skip_layers must be a list"),
        (PruneConfig, {"sparsity": 0.5, "skip_layers": [5]}, "skip_layers must be a list of"),
        (
            PruneConfig,
            {"structure": "channels", "mac_reduction": 1.0},
            "mac_reduction must be in [0.0, 1.0)",
        ),
        (PruneConfig, {"sparsity": 0.5, "sparsityy": 1}, "unknown PruneConfig key(s): sparsityy"),
        (
            PruneConfig,
            {"structure": "channels", "widths": "conv2d:8"},
            "widths must be LAYER=COUNT items separated by commas (e.g. conv2d=8,conv2d_3=24). "
            "Received: 'conv2d:8'",
        ),
        (
            PruneConfig,
            {"structure": "channels", "widths": {"conv2d": 0}},
            "widths['conv2d'] must be 1 to 4096 channels. Received: 0",
        ),
        (
            PruneConfig,
            {"structure": "channels", "widths": {"conv2d": 8.5}},
            "widths must map layer names to whole channel counts",
        ),
        (PruneConfig, {"sparsity": 0.5, "widths": {"conv2d": 8}}, "unknown PruneConfig key(s)"),
        (
            PruneConfig,
            {"structure": "channels", "sparsity": 0.5, "skip_layers": ["head"]},
            "unknown ChannelPruneConfig key(s): skip_layers",
        ),
        (PruneConfig, {"structure": "channels"}, "channel pruning needs a sparsity"),
        (ChannelPruneConfig, {"mac_reduction": -0.5}, "mac_reduction must be in [0.0, 1.0)"),
        (ClusterConfig, {"clusters": 1}, "clusters must be a whole number >= 2. Received: 1"),
        (ClusterConfig, {"clusters": 2.5}, "clusters must be a whole number >= 2"),
        (DistillConfig, {"student": "resnet9"}, "unknown student 'resnet9'"),
        (DistillConfig, {"teacher": "t", "alpha": 1.5}, "alpha must be in [0.0, 1.0]"),
        (DistillConfig, {"teacher": "t", "temperature": 0}, "temperature must be in"),
        (QatConfig, {"preserve_sparsity": "yes"}, "preserve_sparsity must be true or false"),
        (SensitivityConfig, {"mode": "fp16"}, "mode must be one of int8, prune"),
        (SensitivityConfig, {"sparsities": [0.5, 1.0]}, "sparsities must be in [0.0, 1.0)"),
        (AutotuneConfig, {"max_accuracy_drop": -1}, "max_accuracy_drop must be in"),
        (AutotuneConfig, {"qat": {"epochs": 0}}, "epochs must be a whole number >= 1"),
    ],
)
def test_bad_settings_fail_with_one_line(cls, values, message):
    with pytest.raises(EdgesmithError) as info:
        cls.from_dict(values)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "config",
    [
        PruneConfig(sparsity=0.75, skip_layers=("a", "b")),
        PruneConfig(structure="2:4"),
        ChannelPruneConfig(mac_reduction=0.5, ranking="bn"),
        ChannelPruneConfig(widths={"conv2d": 8, "conv2d_3": 24}),
        QatConfig(preserve_sparsity=True),
        DistillConfig(teacher="t", student="resnet8", alpha=0.2),
        ClusterConfig(clusters=8),
        SensitivityConfig(mode="prune", sparsities=(0.5,)),
        AutotuneConfig(max_accuracy_drop=0.5, qat=QatConfig(epochs=1)),
    ],
)
def test_configs_round_trip(config):
    assert type(config).from_dict(config.to_dict()) == config


def test_channel_pruning_is_its_own_config():
    """A setting channel pruning would ignore is refused, not recorded as used."""
    assert isinstance(
        PruneConfig.from_dict({"structure": "channels", "sparsity": 0.3}), ChannelPruneConfig
    )
    with pytest.raises(EdgesmithError, match="use ChannelPruneConfig"):
        PruneConfig(structure="channels", sparsity=0.3)
    assert PruneConfig.from_dict(ChannelPruneConfig(sparsity=0.3).to_dict()).structure == "channels"


def test_widths_parse_from_the_command_line_text():
    config = PruneConfig.from_dict({"structure": "channels", "widths": "a=8, b_2=24,"})
    assert config.widths == {"a": 8, "b_2": 24}
    assert config.sparsity is None  # the other groups keep every channel
    config.to_dict()["widths"]["a"] = 99
    assert config.widths["a"] == 8  # to_dict hands out a copy


@pytest.mark.parametrize(
    ("text", "message"),
    [("a=\u00b2", "LAYER=COUNT"), ("a=8,a=16", "widths names 'a' twice"), (",", "names no group")],
)
def test_bad_widths_text(text, message):
    with pytest.raises(EdgesmithError, match=message):
        PruneConfig.from_dict({"structure": "channels", "widths": text})


def test_default_learning_rates_differ_by_technique():
    assert PruneConfig(sparsity=0.5).peak_learning_rate == pytest.approx(0.02)
    assert PruneConfig(sparsity=0.5, batch_size=256).peak_learning_rate == pytest.approx(0.04)
    assert QatConfig().peak_learning_rate == pytest.approx(0.005)
    assert DistillConfig(teacher="t").peak_learning_rate == pytest.approx(0.2)
    assert PruneConfig(sparsity=0.5, learning_rate=0.1).peak_learning_rate == 0.1
    assert PruneConfig(structure="2:4").target_sparsity == 0.5
