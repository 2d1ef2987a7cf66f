"""Compress-stage fixtures: a fake non-Keras artifact and a quiet reporter."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesmith.core.progress import silent


@pytest.fixture()
def quiet():
    lines: list[str] = []
    return lines.append


@pytest.fixture(scope="session")
def tflite_artifact(tmp_path_factory, write_artifact) -> Path:
    """A published artifact whose format is tflite (compression must refuse it)."""
    from edgesmith.core.manifest import Metrics

    return write_artifact(
        tmp_path_factory.mktemp("fake") / "tflite",
        {"model.tflite": b"TFL3 not really"},
        stage="export",
        technique="tflite-int8",
        fmt="tflite",
        labels=[str(i) for i in range(10)],
        metrics=Metrics(accuracy=0.9, num_eval=1),
        tool_versions={},
    ).path


@pytest.fixture(scope="session")
def pruned_artifact(digits_artifact, tmp_path_factory):
    """The digits resnet8 pruned to 75% in 3 epochs, with its progress lines."""
    from edgesmith.compress.config import PruneConfig
    from edgesmith.compress.pruning import prune

    out = tmp_path_factory.mktemp("prune") / "p75"
    lines: list[str] = []
    artifact = prune(
        digits_artifact, PruneConfig(sparsity=0.75, epochs=3), out, report=lines.append
    )
    return artifact, lines


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory) -> Path:
    """A 3-conv CNN trained 2 epochs on digits: few ops, so int8 conversions are quick."""
    from edgesmith.tfkeras.backend import keras
    from edgesmith.train import TrainConfig, train

    folder = tmp_path_factory.mktemp("tiny")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="input")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(x)
    keras.Model(inputs, outputs).save(folder / "tiny.keras")
    out = folder / "artifact"
    config = TrainConfig(data="digits", model=str(folder / "tiny.keras"), epochs=3)
    train(config, out, report=silent)
    return out
