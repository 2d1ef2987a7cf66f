import dataclasses

import pytest

from edgesmith.core.config import Config, check_range, load_config_file
from edgesmith.core.errors import EdgesmithError
from edgesmith.train.config import TrainConfig


def test_train_config_round_trips_with_defaults():
    config = TrainConfig(data="synthetic", epochs=3)
    again = TrainConfig.from_dict(config.to_dict())
    assert again == config
    assert again.to_dict()["batch_size"] == 128


def test_unknown_keys_are_named_with_the_valid_ones():
    with pytest.raises(EdgesmithError, match=r"unknown TrainConfig key\(s\): epoch\b.*Valid keys"):
        TrainConfig.from_dict({"epoch": 3})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": 0}, "epochs must be a whole number >= 1. Received: 0"),
        ({"batch_size": 2.5}, "batch_size must be a whole number"),
        ({"label_smoothing": 1.2}, r"label_smoothing must be in \[0.0, 1.0\). Received: 1.2"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, adam"),
        ({"augment": "rotate"}, "augment must be auto, none"),
        ({"accelerator": "tpu"}, "accelerator must be one of auto, cpu, gpu"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_bad_values_fail_before_any_work(values, message):
    with pytest.raises(EdgesmithError, match=message):
        TrainConfig.from_dict(values)


def test_default_learning_rate_scales_with_batch():
    assert TrainConfig(batch_size=256).peak_learning_rate == pytest.approx(0.4)
    assert TrainConfig(optimizer="adam").peak_learning_rate == pytest.approx(1e-3)
    assert TrainConfig(learning_rate=0.05).peak_learning_rate == pytest.approx(0.05)


def test_augmentation_resolution():
    assert TrainConfig().augmentations(flip_ok=True) == ("crop", "flip")
    assert TrainConfig().augmentations(flip_ok=False) == ("crop",)
    assert TrainConfig(augment="none").augmentations(flip_ok=True) == ()
    assert TrainConfig(augment="flip").augmentations(flip_ok=False) == ("flip",)


def test_config_files_yaml_json_and_errors(tmp_path):
    (tmp_path / "r.yaml").write_text("epochs: 4\nmodel: dscnn\n")
    (tmp_path / "r.json").write_text('{"epochs": 5}')
    (tmp_path / "bad.yaml").write_text("epochs: [4\n")
    (tmp_path / "list.json").write_text("[1, 2]")
    assert load_config_file(tmp_path / "r.yaml") == {"epochs": 4, "model": "dscnn"}
    assert load_config_file(tmp_path / "r.json") == {"epochs": 5}
    with pytest.raises(EdgesmithError, match="cannot parse"):
        load_config_file(tmp_path / "bad.yaml")
    with pytest.raises(EdgesmithError, match="must hold a mapping"):
        load_config_file(tmp_path / "list.json")
    with pytest.raises(EdgesmithError, match="not found"):
        load_config_file(tmp_path / "absent.yaml")


def test_check_range_rejects_bools_and_strings():
    for value in (True, "0.5", None):
        with pytest.raises(EdgesmithError, match="Received"):
            check_range("sparsity", value, 0.0, 1.0, high_open=True)
    check_range("sparsity", 0.0, 0.0, 1.0, high_open=True)


def test_configs_are_frozen():
    assert dataclasses.is_dataclass(Config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 3  # type: ignore[misc]


def test_a_repeated_flag_keeps_each_item_whole():
    from edgesmith.app.build.options import BuildOptions
    from edgesmith.app.cli import build_parser
    from edgesmith.core.cli_args import config_from_args

    base = ["build", "--device", "cpu-x86", "--data", "digits", "--out", "o"]
    args = build_parser().parse_args(
        [*base, "--ssh-option", "Ciphers=a,b", "--ssh-option", "Port=2"]
    )
    assert config_from_args(BuildOptions, args).ssh_options == ("Ciphers=a,b", "Port=2")
    assert config_from_args(BuildOptions, build_parser().parse_args(base)).ssh_options == ()
