"""Weight clustering (tfmot): every layer's weights take one of K shared values.

Clustered weights compress well (gzip, or K-entry palettes with 4-bit indices for K = 16) and
survive int8 quantisation. Layers are chosen like pruning's (the first conv and tiny layers stay
as they are); the result is stripped to a plain Keras model, and the manifest records the number
of distinct values measured per layer, so "at most K" is a fact, not a setting.
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.compress import finetune, measure
from edgesmith.compress.config import ClusterConfig
from edgesmith.compress.pruning import clone_wrapped, select_layers
from edgesmith.core.artifacts import Artifact, check_output_dir
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import Clustering
from edgesmith.core.progress import Reporter, stderr_reporter
from edgesmith.tfkeras.tfmot import tfmot

CLUSTERABLE = ("Conv1D", "Conv2D", "Dense", "DepthwiseConv2D")
INITS = {
    "kmeans_plus_plus": "KMEANS_PLUS_PLUS",
    "linear": "LINEAR",
    "density": "DENSITY_BASED",
    "random": "RANDOM",
}


def cluster(
    source: str | Path | Artifact,
    config: ClusterConfig,
    out: str | Path,
    *,
    report: Reporter | None = None,
) -> Artifact:
    """Cluster a Keras artifact's weights into ``config.clusters`` values per layer, fine-tuning.

    Args:
        source: the Keras artifact (a pruned one keeps its zeros with ``preserve_sparsity``).
        config: clusters, centroid initialisation, layers to skip, fine-tuning settings.
        out: the new artifact directory.
        report: receives progress lines.

    Returns:
        A plain ``model.keras`` artifact with distinct values per layer and sparsity measured.

    Raises:
        EdgesmithError: for a non-Keras or QAT source, a layer with fewer weights than clusters,
            or a model tfmot cannot wrap.
    """
    report = report or stderr_reporter()
    check_output_dir(out)
    src = finetune.load_source(source, data=config.data)
    chosen, left = select_layers(
        src.model,
        kinds=CLUSTERABLE,
        skip_layers=config.skip_layers,
        include_first=config.cluster_first_layer,
        min_weights=max(config.min_weights, config.clusters),
    )
    if not chosen:
        raise EdgesmithError(
            f"nothing to cluster in {src.artifact.path}: every layer was left alone "
            f"({'; '.join(f'{k}: {v}' for k, v in left.items())})"
        )
    clustering = tfmot.clustering.keras
    init = getattr(clustering.CentroidInitialization, INITS[config.init])

    def wrap(layer):
        return clustering.cluster_weights(
            layer,
            number_of_clusters=config.clusters,
            cluster_centroids_init=init,
            preserve_sparsity=config.preserve_sparsity,
        )

    model = clone_wrapped(src.model, chosen, wrap)
    report(
        f"cluster: {config.clusters} values per layer in {len(chosen)} layers "
        f"({', '.join(chosen)}); left alone: {', '.join(left) or 'none'}"
    )
    history = finetune.fit(model, src, config, label="cluster", report=report)
    stripped = clustering.strip_clustering(model)
    metrics = finetune.measure(stripped, src)
    distinct = measure.unique_values(stripped)
    metrics["unique_values_per_layer"] = distinct
    metrics["clusters"] = config.clusters
    metrics.update(measure.sparsity_report(stripped))
    over = [name for name in chosen if distinct[name] > config.clusters]
    if over:
        raise EdgesmithError(
            f"clustering left more than {config.clusters} values in {', '.join(over)}; "
            "this is a bug, please report it"
        )
    return finetune.publish(
        out,
        stripped,
        src,
        technique="cluster",
        config=finetune.resolved_config(config, src),
        metrics=metrics,
        clustering=Clustering(clustered_layers=tuple(chosen), left_alone=dict(left)),
        history=history,
        report=report,
    )
