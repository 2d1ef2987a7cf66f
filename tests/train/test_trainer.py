import json

import numpy as np
import pytest

from edgesmith.core.artifacts import read_artifact
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import silent
from edgesmith.train import TrainConfig, train

QUIET = staticmethod(silent)


def test_digits_artifact_is_complete_and_learned(digits_artifact):
    artifact = read_artifact(digits_artifact)
    m = artifact.manifest
    assert m.stage == "train" and m.technique == "resnet8" and m.format == "keras"
    assert m.input.shape == (8, 8, 1) and m.input.normalization.name == "unit"
    assert m.dataset.spec == "digits" and m.dataset.num_eval == 359
    assert m.metrics.num_eval == 359 and m.metrics.accuracy > 0.3  # chance is 0.1
    assert m.metrics.params == 78_378 and m.metrics.macs > 0
    assert len(m.history) == 2 and m.config["learning_rate"] == pytest.approx(0.2)
    assert m.output.kind == "probabilities" and m.labels[0] == "0"
    assert m.input_pipeline.augment_on == "host" and m.trusted_model_code is False
    assert (digits_artifact / "logs").is_dir()  # TensorBoard
    assert not (digits_artifact / "backup").exists()


def test_saved_model_reproduces_the_recorded_accuracy(digits_artifact):
    from edgesmith.core.datasets import load_dataset
    from edgesmith.tfkeras.evaluate import predict
    from edgesmith.tfkeras.model_io import load_keras_model

    artifact = read_artifact(digits_artifact)
    model, _ = load_keras_model(artifact.model_path)
    data = load_dataset("digits")
    norm = artifact.normalization
    accuracy = (predict(model, data.x_eval, norm).argmax(1) == data.y_eval).mean()
    assert accuracy == pytest.approx(artifact.metrics.accuracy, abs=1e-6)


@pytest.mark.slow
def test_same_seed_same_weights(tmp_path):
    config = TrainConfig(data="synthetic?n=64&shape=8x8", model="seed_cnn", epochs=1, batch_size=16)
    from edgesmith.tfkeras.model_io import load_keras_model

    a = train(config, tmp_path / "a", report=silent)
    b = train(config, tmp_path / "b", report=silent)
    c = train(config.replace(seed=1), tmp_path / "c", report=silent)
    weights = [load_keras_model(x.model_path)[0].get_weights() for x in (a, b, c)]
    for wa, wb in zip(weights[0], weights[1], strict=True):
        np.testing.assert_allclose(wa, wb, atol=1e-5)
    assert not np.allclose(weights[0][0], weights[2][0])


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_last_epoch(tmp_path):
    config = TrainConfig(data="synthetic?n=64&shape=8x8", model="resnet8", epochs=3, batch_size=16)
    lines = []

    def stop_after_first_epoch(line):
        lines.append(line)
        if line.startswith("epoch   1/3"):
            raise Interrupt

    with pytest.raises(Interrupt):
        train(config, tmp_path / "run", report=stop_after_first_epoch)
    assert not (tmp_path / "run").exists() and (tmp_path / "run.partial").is_dir()
    with pytest.raises(EdgesmithError, match="pass --resume"):
        train(config, tmp_path / "run", report=silent)
    with pytest.raises(EdgesmithError, match="different settings for epochs"):
        train(config.replace(epochs=4), tmp_path / "run", resume=True, report=silent)
    resumed = []
    artifact = train(config, tmp_path / "run", resume=True, report=resumed.append)
    epochs_run = [line.split()[1] for line in resumed if line.startswith("epoch")]
    assert epochs_run == ["2/3", "3/3"]
    assert [h["epoch"] for h in artifact.manifest.history] == [1, 2, 3]
    assert not (tmp_path / "run.partial").exists()


def test_fine_tunes_a_user_model_file_with_logits(tmp_path):
    from edgesmith.tfkeras.backend import keras

    user = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    user.save(tmp_path / "user.h5")
    artifact = train(
        TrainConfig(
            data="digits",
            model=str(tmp_path / "user.h5"),
            epochs=1,
            augment="none",
            normalization="standard",
        ),
        tmp_path / "ft",
        report=silent,
    )
    m = artifact.manifest
    assert m.technique == "finetune" and m.output.kind == "logits"
    assert m.input.normalization.name == "standard"
    assert m.metrics.accuracy > 0.5
    history = json.loads((artifact.path / "history.json").read_text())
    assert history[0]["images_per_second"] > 0


def test_user_model_that_does_not_fit_the_data(tmp_path):
    from edgesmith.tfkeras.backend import keras

    user = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    user.save(tmp_path / "cifar_shaped.keras")
    with pytest.raises(EdgesmithError, match=r"takes inputs shaped \(32, 32, 3\).*\(8, 8, 1\)"):
        train(
            TrainConfig(data="digits", model=str(tmp_path / "cifar_shaped.keras"), epochs=1),
            tmp_path / "x",
            report=silent,
        )
    assert not (tmp_path / "x").exists()


def test_flip_is_not_applied_to_digits_by_default(digits_artifact):
    config = read_artifact(digits_artifact).manifest.config
    assert config["augment"] == "crop"


def test_pipeline_augmentation_shifts_and_flips():
    from edgesmith.core.normalization import parse_normalization
    from edgesmith.tfkeras.pipeline import train_dataset

    x = np.zeros((64, 8, 8, 1), np.uint8)
    x[:, :, :4] = 255  # left half bright
    ds = train_dataset(
        x,
        np.zeros(64, np.int64),
        num_classes=2,
        norm=parse_normalization("unit"),
        batch_size=64,
        augment=("crop", "flip"),
        seed=0,
    )
    images, labels = next(iter(ds))
    images = images.numpy()
    assert labels.shape == (64, 2)
    left_bright = images[:, :, :2].mean(axis=(1, 2, 3)) > 0.5
    assert 10 < left_bright.sum() < 54  # about half flipped
    assert len({images[i].tobytes() for i in range(64)}) > 4  # crops differ


def test_widths_train_the_thin_network_and_say_so(tmp_path):
    from edgesmith.tfkeras.model_io import load_keras_model

    widths = {"stem_conv": 8, "stage2_block1_conv1": 8}
    config = TrainConfig(
        data="synthetic?n=64&shape=8x8", model="resnet8", epochs=1, batch_size=16, widths=widths
    )
    artifact = train(config, tmp_path / "thin", report=silent)
    model, _ = load_keras_model(artifact.model_path)
    assert model.get_layer("stem_conv").filters == 8
    assert model.get_layer("stage1_block1_conv2").filters == 8  # the stem's group
    assert model.get_layer("stage2_block1_conv1").filters == 8
    assert artifact.manifest.config["widths"] == widths
    assert artifact.metrics.params == model.count_params() < 78_378


BAD_WIDTHS = {
    "stem_conv=0": "widths['stem_conv'] must be 1 to 4096 channels",
    "stem_conv=99999999999999999999": "must be 1 to 4096 channels",
    "stem_conv": "widths must be LAYER=COUNT items",
    "bogus=8": "widths names bogus, which is in no channel group",
    "stem_conv=8,stage1_block1_conv2=4": "gives the group of stem_conv two counts: 4 and 8",
    "stem_conv=8 --model seed_cnn": "widths resize a zoo ResNet",
    "stem_conv=8 --model zoo:resnet8-cifar10": "has trained widths",
}


@pytest.mark.parametrize("given", sorted(BAD_WIDTHS))
def test_bad_widths_exit_2_in_one_line_before_any_training(run_cli, tmp_path, given):
    out = tmp_path / "out"
    code, _, err = run_cli("train", "--data", "digits", "--widths", *given.split(), "--out", out)
    assert code == 2 and BAD_WIDTHS[given] in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # no artifact, no staging folder left behind


def test_a_zoo_model_fine_tunes_with_its_entry_as_parent(tmp_path):
    from edgesmith.core.pretrained import find

    config = TrainConfig(
        data="synthetic?shape=32x32x3&classes=10&n=64",
        model="zoo:resnet8-thin-cifar10",
        epochs=1,
        batch_size=32,
    )
    artifact = train(config, tmp_path / "ft", report=silent)
    assert artifact.manifest.parent == find("resnet8-thin-cifar10").artifact_id()
    assert artifact.manifest.technique == "finetune" and artifact.metrics.params == 45_498


def test_a_run_that_fails_before_its_first_epoch_leaves_nothing_to_resume(run_cli, tmp_path):
    out = tmp_path / "ft"  # the 32x32x3 CIFAR-10 model cannot take the 8x8x1 digits
    args = ("train", "--model", "zoo:resnet8-cifar10", "--data", "digits", "--quiet", "--out", out)
    code, _, err = run_cli(*args)
    assert code == 2 and err.count("\n") == 1 and "shaped (32, 32, 3)" in err
    assert list(tmp_path.iterdir()) == []
    code, _, err = run_cli(*args)
    assert code == 2 and "interrupted run" not in err  # the same error again, not "pass --resume"
