"""Export fixtures: one export of every format from the shared digits artifact, and a tiny
logits model with a non-zero-mean normalisation, built and trained in code (a few seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesmith.core.progress import silent

QUIET = {"report": silent}


@pytest.fixture(scope="session")
def exported_all(digits_artifact, tmp_path_factory):
    """Every format exported from the digits resnet8 (about 30 s on 2 busy cores)."""
    from edgesmith.export import export_formats

    out = tmp_path_factory.mktemp("export") / "all"
    results = export_formats(digits_artifact, "all", out, **QUIET)
    return {r.name: r for r in results}


@pytest.fixture(scope="session")
def logits_artifact(tmp_path_factory) -> Path:
    """A small CNN ending in logits (no softmax), trained on 'standard'-normalised stripes.

    'standard' has a non-zero mean, so raw-input export must prepend an affine layer rather
    than scale the first kernel; logits exercise the logits tolerance.
    """
    from edgesmith.core.artifacts import ArtifactWriter
    from edgesmith.core.datasets import load_dataset
    from edgesmith.core.manifest import DatasetRecord, InputRecord, Metrics, OutputRecord
    from edgesmith.core.normalization import parse_normalization
    from edgesmith.tfkeras.backend import keras

    spec = "synthetic?classes=4&shape=12x12x3&n=384"
    data = load_dataset(spec)
    mean, std = data.channel_stats()
    norm = parse_normalization("standard", mean=mean, std=std)
    keras.utils.set_random_seed(1)
    layers = keras.layers
    inputs = keras.Input(data.input_shape, name="input")
    x = layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    x = layers.BatchNormalization(momentum=0.9, name="bn1")(x)
    x = layers.ReLU()(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(data.num_classes, name="logits")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(0.02),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(norm.apply(data.x_train), data.y_train, epochs=6, batch_size=32, verbose=0)
    accuracy = float(np.mean(model(norm.apply(data.x_eval)).numpy().argmax(1) == data.y_eval))
    out = tmp_path_factory.mktemp("artifacts") / "logits"
    with ArtifactWriter(out) as writer:
        model.save(writer.dir / "model.keras")
        return writer.commit(
            model_files=["model.keras"],
            stage="train",
            technique="tiny",
            fmt="keras",
            config={},
            input_spec=InputRecord(
                shape=tuple(data.input_shape),
                layout="NHWC",
                dtype="float32",
                normalization=norm,
                quantization=None,
            ),
            labels=list(data.labels),
            dataset=DatasetRecord.from_dict(data.describe()),
            metrics=Metrics(accuracy=accuracy, num_eval=len(data.y_eval)),
            output=OutputRecord(kind="logits", shape=(data.num_classes,)),
        ).path
