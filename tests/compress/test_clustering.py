import pytest

from edgesmith.compress.config import ClusterConfig


@pytest.fixture(scope="module")
def clustered(digits_artifact, tmp_path_factory):
    from edgesmith.compress.clustering import cluster

    out = tmp_path_factory.mktemp("cluster") / "k8"
    return cluster(digits_artifact, ClusterConfig(clusters=8, epochs=1), out, report=lambda _: 0)


def test_clustered_layers_hold_at_most_k_values(clustered):
    from edgesmith.compress.measure import unique_values
    from edgesmith.tfkeras.model_io import load_keras_model

    manifest = clustered.manifest
    chosen = manifest.clustering.clustered_layers
    assert manifest.technique == "cluster" and len(chosen) >= 5
    model, _ = load_keras_model(clustered.model_path)
    distinct = unique_values(model)
    assert distinct == manifest.metrics.unique_values_per_layer
    for name in chosen:
        assert 2 <= distinct[name] <= 8
    assert distinct["stem_conv"] > 8  # the first conv is left alone by default
    assert manifest.metrics.accuracy > 0.5


def test_sparsity_preserving_clustering(pruned_artifact, tmp_path, quiet):
    from edgesmith.compress.clustering import cluster

    source, _ = pruned_artifact
    config = ClusterConfig(clusters=4, epochs=1, preserve_sparsity=True)
    artifact = cluster(source.path, config, tmp_path / "pk", report=quiet)
    before = source.metrics.sparsity
    assert artifact.metrics.sparsity >= before - 1e-3
