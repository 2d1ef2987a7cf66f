"""Input placement: augmentation on the host or in the training step, prefetch to the device.

There is no GPU here: the selection logic is tested as pure functions of a device plan, the
device path is run on the CPU (it must match the host path's distribution and accuracy and leave
the saved model unchanged), and the copy-to-device machinery is exercised with the CPU as target.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import silent
from edgesmith.train import TrainConfig
from edgesmith.train.devices import plan_devices, plan_input

GPU0 = "/physical_device:GPU:0"
GPU1 = "/physical_device:GPU:1"
SYNTH = "synthetic?n=64&shape=8x8"


# -- the decision, without a GPU


def test_cpu_keeps_augmentation_and_batches_on_the_host():
    placement = plan_input(plan_devices("auto", []), "auto")
    assert placement.augment_on == "host" and placement.augment_device == "CPU"
    assert not placement.prefetch_to_device and placement.prefetch_target is None
    assert plan_input(plan_devices("cpu", [GPU0]), "auto").augment_on == "host"  # GPU hidden


def test_one_gpu_augments_on_it_and_prefetches_with_tf_data():
    placement = plan_input(plan_devices("auto", [GPU0]), "auto")
    assert placement.augment_on == "device" and placement.augment_device == "GPU"
    assert placement.prefetch_to_device and placement.prefetch_target == "/device:GPU:0"
    host = plan_input(plan_devices("gpu", [GPU0]), "host")
    assert host.augment_on == "host" and host.augment_device == "CPU"
    assert host.prefetch_target == "/device:GPU:0"  # normalised batches still travel ahead


@pytest.mark.parametrize(
    ("gpus", "strategy", "tf_config"),
    [
        ([GPU0, GPU1], "auto", None),
        (
            [GPU0],
            "multiworker",
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}',
        ),
    ],
)
def test_strategies_leave_the_fetch_to_keras_and_are_not_distributed_twice(
    gpus, strategy, tf_config
):
    plan = plan_devices("auto", gpus, strategy=strategy, tf_config=tf_config)
    placement = plan_input(plan, "auto")
    assert placement.augment_on == "device" and placement.prefetch_to_device
    assert placement.prefetch_target is None and "Keras fit" in placement.fetch


def test_device_placement_on_a_cpu_runs_there_and_says_so():
    placement = plan_input(plan_devices("auto", []), "device")
    assert placement.augment_on == "device" and placement.augment_device == "CPU"
    line = placement.describe(("crop", "flip"))
    assert "crop,flip augmentation in the training step on the CPU" in line
    assert "augment_on device" in line and "stay on the host" in line
    assert "no augmentation" in plan_input(plan_devices("auto", []), "host").describe(())


def test_unknown_placement_is_refused_with_the_choices():
    with pytest.raises(EdgesmithError, match=r"auto, host, device\. Received: 'gpu'"):
        plan_input(plan_devices("auto", []), "gpu")
    with pytest.raises(EdgesmithError, match=r"augment_on must be one of auto, host, device"):
        TrainConfig(augment_on="GPU")
    config = TrainConfig(augment_on="device")
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_default_sgd_rate_follows_the_linear_scaling_rule():
    base = TrainConfig().peak_learning_rate
    assert base == pytest.approx(0.2)  # at the base batch, 128
    assert TrainConfig(batch_size=512).peak_learning_rate == pytest.approx(4 * base)
    assert TrainConfig(batch_size=32).peak_learning_rate == pytest.approx(base / 4)
    assert TrainConfig(batch_size=512, learning_rate=0.1).peak_learning_rate == 0.1
    assert TrainConfig(batch_size=512, optimizer="adam").peak_learning_rate == 1e-3


# -- one distribution on both placements


def _coordinates(size: int = 16) -> np.ndarray:
    """An image whose channels hold each pixel's row and column (1-based), as raw pixels."""
    rows, cols = np.mgrid[1 : size + 1, 1 : size + 1]
    return np.stack([rows, cols], axis=-1).astype(np.uint8)


def _offsets(images: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recover each augmented image's crop offsets (0..2*pad) and whether it was flipped."""
    c = 8  # well inside the frame for any offset
    row = images[:, c, c, 0] + 100  # the normalisation subtracts 100
    col, right = images[:, c, c, 1] + 100, images[:, c, c + 1, 1] + 100
    flipped = right < col
    dy = row - 1 - c + pad
    dx = col - 1 - np.where(flipped, 15 - c, c) + pad
    return dy.round().astype(int), dx.round().astype(int), flipped


def _check_uniform(dy, dx, flipped, pad, n):
    for values in (dy, dx):
        counts = np.bincount(values, minlength=2 * pad + 1)
        assert len(counts) == 2 * pad + 1  # nothing outside 0..2*pad
        expected = n / (2 * pad + 1)
        assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected)), counts
    assert abs(flipped.mean() - 0.5) < 5 * 0.5 / np.sqrt(n)
    cells = {(a, b, f) for a, b, f in zip(dy, dx, flipped, strict=True)}
    assert len(cells) == 2 * (2 * pad + 1) ** 2  # every offset with and without a flip


def test_device_augmentation_draws_from_the_host_distribution():
    from edgesmith.core.normalization import Normalization
    from edgesmith.tfkeras.augment import DeviceAugmenter, crop_padding
    from edgesmith.tfkeras.backend import keras
    from edgesmith.tfkeras.pipeline import train_dataset

    n, size = 4000, 16
    pad = crop_padding((size, size, 2))
    norm = Normalization("custom", scale=1.0, mean=(100.0,), std=(1.0,))
    x = np.repeat(_coordinates(size)[None], n, axis=0)
    host_ds = train_dataset(
        x,
        np.zeros(n, np.int64),
        num_classes=2,
        norm=norm,
        batch_size=n,
        augment=("crop", "flip"),
        seed=0,
    )
    host = next(iter(host_ds))[0].numpy()
    inner = keras.Sequential([keras.Input((size, size, 2)), keras.layers.GlobalAveragePooling2D()])
    wrapper = DeviceAugmenter(inner, norm=norm, augment=("crop", "flip"), pad=pad, seed=0)
    wrapper.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    device = wrapper.prepare(x).numpy()
    wrapper.optimizer.iterations.assign(1)
    assert not np.array_equal(wrapper.prepare(x[:64]).numpy(), device[:64])  # new step, new draws
    for images in (host, device):
        assert images.dtype == np.float32 and images.shape == x.shape
        dy, dx, flipped = _offsets(images, pad)
        _check_uniform(dy, dx, flipped, pad, n)
        # the frame is padded with zeros after normalisation: exactly the shifted-out pixels
        outside = size * size - (size - np.abs(dy - pad)) * (size - np.abs(dx - pad))
        np.testing.assert_array_equal((images[..., 0] == 0).sum(axis=(1, 2)), outside)
        inside = images[images != 0]
        assert inside.min() >= 1 - 100 and inside.max() <= size - 100


def test_device_pipeline_hands_over_raw_pixels():
    from edgesmith.core.normalization import parse_normalization
    from edgesmith.tfkeras.pipeline import train_dataset

    x = np.full((10, 8, 8, 1), 200, np.uint8)
    ds = train_dataset(
        x,
        np.arange(10) % 3,
        num_classes=3,
        norm=parse_normalization("unit"),
        batch_size=4,
        augment=("crop",),
        seed=0,
        augment_on="device",
    )
    images, labels = next(iter(ds))
    assert images.dtype.name == "uint8" and np.all(images.numpy() == 200)
    assert labels.shape == (4, 3)
    with pytest.raises(ValueError, match="augment_on must be host or device"):
        train_dataset(
            x,
            np.zeros(10),
            num_classes=3,
            norm=parse_normalization("unit"),
            batch_size=4,
            augment=(),
            seed=0,
            augment_on="gpu",
        )


def test_mixed_float16_wrapper_gets_loss_scaling():
    from edgesmith.core.normalization import parse_normalization
    from edgesmith.tfkeras.augment import DeviceAugmenter
    from edgesmith.tfkeras.backend import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inner = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
        wrapper = DeviceAugmenter(
            inner, norm=parse_normalization("unit"), augment=("crop",), pad=1, seed=0
        )
        wrapper.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(wrapper.optimizer, keras.mixed_precision.LossScaleOptimizer)


# -- training end to end on the CPU


@pytest.mark.slow
def test_device_mode_learns_like_host_mode_and_saves_the_same_model(tmp_path):
    from edgesmith.core.artifacts import read_artifact
    from edgesmith.tfkeras.model_io import load_keras_model
    from edgesmith.train import train

    runs = {}
    for place in ("host", "device"):
        config = TrainConfig(data="digits", model="resnet8", epochs=5, augment_on=place)
        lines = []
        artifact = train(config, tmp_path / place, report=lines.append)
        runs[place] = (
            read_artifact(artifact.path).manifest.to_dict(),
            load_keras_model(artifact.model_path)[0],
        )
        assert any(f"augment_on {place}" in line for line in lines)
    (host, host_model), (device, device_model) = runs["host"], runs["device"]
    assert host["config"]["augment_on"] == "host" and device["config"]["augment_on"] == "device"
    assert device["input_pipeline"] == {
        "augment_on": "device",
        "augment_device": "CPU",
        "prefetch_to_device": False,
        "prefetch_target": None,
        "fetch": "on the host",
    }
    assert host["metrics"]["accuracy"] > 0.85 and device["metrics"]["accuracy"] > 0.85
    assert abs(host["metrics"]["accuracy"] - device["metrics"]["accuracy"]) < 0.06

    def structure(model):
        return [
            (type(layer).__name__, [tuple(w.shape) for w in layer.weights])
            for layer in model.layers
        ]

    assert structure(device_model) == structure(host_model)
    assert device_model.count_params() == host_model.count_params() == host["metrics"]["params"]
    assert type(device_model).__name__ == type(host_model).__name__ != "DeviceAugmenter"


@pytest.mark.slow
def test_device_mode_resumes_and_refuses_a_changed_placement(tmp_path):
    from edgesmith.train import train

    class Interrupt(Exception):
        pass

    def stop_after_first_epoch(line):
        if line.startswith("epoch   1/2"):
            raise Interrupt

    config = TrainConfig(data=SYNTH, model="seed_cnn", epochs=2, batch_size=16, augment_on="device")
    with pytest.raises(Interrupt):
        train(config, tmp_path / "run", report=stop_after_first_epoch)
    with pytest.raises(EdgesmithError, match="different settings for augment_on"):
        train(config.replace(augment_on="host"), tmp_path / "run", resume=True, report=silent)
    resumed = []
    artifact = train(config, tmp_path / "run", resume=True, report=resumed.append)
    assert [line.split()[1] for line in resumed if line.startswith("epoch")] == ["2/2"]
    assert artifact.manifest.config["augment_on"] == "device"


@pytest.mark.slow
def test_batches_prefetched_to_a_device_train(tmp_path, monkeypatch):
    """The single-GPU path (tf.data prefetch_to_device) with the CPU standing in for the GPU."""
    from edgesmith.train import devices, train

    real = devices.plan_input

    def cpu_as_accelerator(plan, augment_on="auto"):
        return devices.InputPlan(
            real(plan, augment_on).augment_on, "CPU", True, "/device:CPU:0", "test copy"
        )

    monkeypatch.setattr(devices, "plan_input", cpu_as_accelerator)
    config = TrainConfig(data=SYNTH, model="seed_cnn", epochs=2, batch_size=16, augment_on="device")
    artifact = train(config, tmp_path / "run", report=silent)
    assert artifact.manifest.input_pipeline.prefetch_target == "/device:CPU:0"
    assert [h["epoch"] for h in artifact.manifest.history] == [1, 2]
    assert artifact.metrics.num_eval > 0


def test_prefetched_batches_arrive_on_the_target_device():
    from edgesmith.core.normalization import parse_normalization
    from edgesmith.tfkeras.pipeline import eval_dataset

    ds = eval_dataset(
        np.zeros((8, 8, 8, 1), np.uint8),
        np.zeros(8),
        num_classes=2,
        norm=parse_normalization("unit"),
        batch_size=4,
        prefetch_device="/device:CPU:0",
    )
    batches = list(ds)
    assert len(batches) == 2 and batches[0][0].device.endswith("device:CPU:0")


@pytest.mark.slow
def test_mirrored_replicas_augment_their_own_batches_and_train():
    """MirroredStrategy over two logical CPUs: Keras distributes, each replica draws its own crops.

    Runs in a subprocess: logical devices must be configured before TensorFlow initialises.
    """
    script = textwrap.dedent(
        """
        import numpy as np
        from edgesmith.tfkeras.backend import keras, tf
        from edgesmith.core.normalization import parse_normalization
        from edgesmith.tfkeras.augment import DeviceAugmenter

        cpu = tf.config.list_physical_devices("CPU")[0]
        two = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, two)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            inner = keras.Sequential([
                keras.Input((8, 8, 1)), keras.layers.Flatten(),
                keras.layers.Dense(3, activation="softmax"),
            ])
            model = DeviceAugmenter(
                inner, norm=parse_normalization("unit"), augment=("crop", "flip"), pad=1, seed=0
            )
            model.compile(keras.optimizers.SGD(0.1), "categorical_crossentropy")
        x = np.random.default_rng(0).integers(0, 255, (64, 8, 8, 1)).astype(np.uint8)
        same = strategy.experimental_distribute_values_from_function(lambda ctx: x[:32])
        out = strategy.run(tf.function(model.prepare), args=(same,))
        a, b = (t.numpy() for t in strategy.experimental_local_results(out))
        assert a.shape == b.shape == (32, 8, 8, 1), a.shape
        assert not np.array_equal(a, b), "replicas drew the same crops"
        ds = tf.data.Dataset.from_tensor_slices((x, tf.one_hot(np.arange(64) % 3, 3))).batch(16)
        history = model.fit(ds, epochs=2, verbose=0).history
        assert np.isfinite(history["loss"]).all(), history
        print("ok", strategy.num_replicas_in_sync)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ok 2" in result.stdout


# -- the command line


def test_cli_refuses_an_unknown_placement_in_one_line(tmp_path, capsys):
    from edgesmith.app.cli import main

    code = main(["train", "--augment-on", "gpu", "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "edgesmith: error: argument --augment-on: augment_on must be one of auto, host, "
        "device. Received: 'gpu' (see edgesmith train --help)"
    )
    assert not (tmp_path / "a").exists()


@pytest.mark.slow
def test_cli_runs_device_placement_on_the_cpu_and_says_where(tmp_path, capsys):
    from edgesmith.app.cli import main

    code = main(
        [
            "train",
            "--data",
            SYNTH,
            "--model",
            "seed_cnn",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--augment-on",
            "device",
            "--accelerator",
            "cpu",
            "--out",
            str(tmp_path / "a"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "augmentation in the training step on the CPU (augment_on device)" in err


# -- on an NVIDIA machine only


@pytest.mark.gpu
def test_on_a_gpu_batches_and_augmentation_live_on_it(tmp_path):
    from edgesmith.tfkeras.pipeline import to_device
    from edgesmith.train import train
    from edgesmith.train.devices import visible_gpus

    if not visible_gpus():
        pytest.skip("no GPU visible to TensorFlow")
    from edgesmith.tfkeras.backend import tf

    batch = next(iter(to_device(tf.data.Dataset.range(4).batch(2), "/device:GPU:0")))
    assert "GPU" in batch.device
    artifact = train(
        TrainConfig(data=SYNTH, model="seed_cnn", epochs=1), tmp_path / "g", report=silent
    )
    assert artifact.manifest.input_pipeline.augment_on == "device"
    assert artifact.manifest.input_pipeline.prefetch_to_device is True
