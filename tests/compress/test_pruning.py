import gzip
import json

import numpy as np
import pytest

from edgesmith.compress.config import PruneConfig
from edgesmith.core.errors import EdgesmithError


def test_schedule_ends_on_a_mask_update():
    from edgesmith.compress.pruning import plan_schedule

    for total, fraction, freq in [(128, 1.0, 100), (3128, 0.75, 100), (36, 0.75, 100), (5, 0.5, 3)]:
        plan = plan_schedule(total, fraction, freq)
        assert plan.end_step % plan.frequency == 0  # the last update hits the target
        assert 1 <= plan.end_step <= total
        assert plan.frequency <= freq
    # the measured trap: 128 steps with frequency 100 would stop at step 100, short of target
    assert plan_schedule(128, 1.0, 100).end_step == 120


def test_is_2_by_4():
    from edgesmith.compress.measure import is_2_by_4

    kernel = np.ones((3, 3, 8, 4))
    assert not is_2_by_4(kernel)
    kernel[:, :, [0, 1, 4, 6], :] = 0
    assert is_2_by_4(kernel)
    kernel[0, 0, 1, 2] = 1.0  # one group of four now has a single zero
    assert not is_2_by_4(kernel)
    dense = np.ones((6, 3))
    dense[[0, 2, 4, 5], :] = 0  # rows 4-5 plus two padded zeros form the last group
    assert is_2_by_4(dense)


@pytest.fixture()
def pruned(pruned_artifact):
    return pruned_artifact


def test_unstructured_sparsity_is_measured_on_target(pruned, digits_artifact):
    artifact, lines = pruned
    metrics = artifact.metrics
    per_layer = metrics.sparsity_per_layer
    pruned_layers = artifact.manifest.pruning.pruned_layers
    assert len(pruned_layers) >= 5
    layer_target = artifact.manifest.pruning.layer_target_sparsity
    assert 0.75 < layer_target < 0.8  # the pruned layers make up for those left dense
    for name in pruned_layers:
        assert per_layer[name] == pytest.approx(layer_target, abs=0.005)
    # the first conv and the small layers stay dense by default
    assert per_layer["stem_conv"] == 0.0 and per_layer["logits"] == 0.0
    assert "stem_conv" in artifact.manifest.pruning.left_dense
    assert metrics.sparsity == pytest.approx(0.75, abs=0.005)  # over the whole model
    assert metrics.sparsity_pruned_layers == pytest.approx(layer_target, abs=0.005)
    assert any(line.startswith("prune epoch 3/3") for line in lines)


def test_pruned_artifact_is_plain_and_records_its_parent(pruned, digits_artifact):
    from edgesmith.compress.measure import sparsity_report
    from edgesmith.core.artifacts import read_artifact
    from edgesmith.tfkeras.evaluate import eval_metrics
    from edgesmith.tfkeras.model_io import load_keras_model

    artifact, _ = pruned
    parent = read_artifact(digits_artifact)
    manifest = artifact.manifest
    assert manifest.stage == "compress" and manifest.technique == "prune"
    assert manifest.parent == parent.id
    assert manifest.model_file == "model.keras"
    assert manifest.input == parent.input_spec
    assert manifest.labels == parent.manifest.labels
    assert manifest.config["sparsity"] == 0.75 and manifest.config["learning_rate"] == 0.02
    model, _ = load_keras_model(artifact.model_path)
    assert not any("prune" in layer.name for layer in model.layers)  # stripped
    assert sparsity_report(model)["sparsity"] == manifest.metrics.sparsity
    from edgesmith.core.datasets import load_dataset

    again = eval_metrics(model, load_dataset("digits"), manifest.input.normalization)
    assert again["accuracy"] == pytest.approx(manifest.metrics.accuracy, abs=1e-6)
    assert manifest.metrics.accuracy > 0.5


def test_pruned_weights_gzip_smaller(pruned, digits_artifact):
    from edgesmith.compress.measure import kernels
    from edgesmith.tfkeras.model_io import load_keras_model

    artifact, _ = pruned
    dense, _ = load_keras_model(digits_artifact / "model.keras")
    sparse, _ = load_keras_model(artifact.model_path)

    def packed(model):
        data = b"".join(k.astype(np.float32).tobytes() for _, _, k in kernels(model))
        return len(gzip.compress(data))

    assert packed(sparse) < 0.6 * packed(dense)


def test_2_by_4_pattern_verified(digits_artifact, tmp_path, quiet):
    from edgesmith.compress.pruning import prune

    artifact = prune(
        digits_artifact, PruneConfig(structure="2:4", epochs=1), tmp_path / "p24", report=quiet
    )
    metrics = artifact.metrics
    assert artifact.manifest.technique == "prune-2x4"
    assert metrics.pattern_2x4 is True
    chosen = artifact.manifest.pruning.pruned_layers
    assert set(metrics.pattern_2x4_per_layer) == set(chosen) and len(chosen) >= 5
    for name in chosen:
        assert metrics.sparsity_per_layer[name] >= 0.5 - 1e-6


def test_unknown_skip_layer_named(digits_artifact, tmp_path, quiet):
    from edgesmith.compress.pruning import prune

    config = PruneConfig(sparsity=0.5, skip_layers=("conv9",))
    with pytest.raises(EdgesmithError, match="the model has no layer 'conv9'"):
        prune(digits_artifact, config, tmp_path / "x", report=quiet)
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_subclassed_model_is_refused_by_name():
    from edgesmith.compress.pruning import check_wrappable
    from edgesmith.tfkeras.backend import keras

    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    model = Net()
    model(np.zeros((1, 4), np.float32))
    with pytest.raises(EdgesmithError, match="subclassed Net; tfmot can only wrap"):
        check_wrappable(model)


def test_manifest_is_json_round_trippable(pruned):
    artifact, _ = pruned
    again = json.loads((artifact.path / "manifest.json").read_text())
    assert again["metrics"]["sparsity_per_layer"] == artifact.metrics.sparsity_per_layer


def test_layer_scope_prunes_each_layer_to_the_target(digits_artifact, tmp_path, quiet):
    from edgesmith.compress.pruning import prune

    config = PruneConfig(sparsity=0.6, sparsity_scope="layers", schedule="constant", epochs=1)
    artifact = prune(digits_artifact, config, tmp_path / "p", report=quiet)
    per_layer = artifact.metrics.sparsity_per_layer
    for name in artifact.manifest.pruning.pruned_layers:
        assert per_layer[name] == pytest.approx(0.6, abs=0.005)
    assert artifact.metrics.sparsity < 0.6
