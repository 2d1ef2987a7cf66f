"""Reading the artifact a technique starts from, checked without TensorFlow.

Every command checks its ``--from`` (and ``--teacher``) here first, so a wrong directory or a
TFLite artifact fails in milliseconds with a one-line message instead of after TensorFlow loads.
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.artifacts import Artifact, read_artifact
from edgesmith.errors import EdgesmithError


def read_keras_source(
    path: str | Path, *, role: str = "--from", allow_qat: bool = False
) -> Artifact:
    """Open a Keras artifact to compress.

    Args:
        path: the artifact directory.
        role: how the argument is called in messages (``--from``, ``--teacher``...).
        allow_qat: accept a QAT artifact (its fake-quantised layers cannot be pruned, clustered
            or quantised again, but they can teach or be evaluated).

    Returns:
        The verified artifact.

    Raises:
        EdgesmithError: for a missing or non-artifact directory, a non-Keras artifact, or a QAT
            artifact where a float one is needed.
    """
    artifact = read_artifact(path)
    if artifact.format != "keras":
        raise EdgesmithError(
            f"{role} {path} is a {artifact.format} artifact ({artifact.manifest['technique']}); "
            "compression needs a Keras artifact (from edgesmith train, import or compress)"
        )
    if artifact.manifest.get("qat") and not allow_qat:
        raise EdgesmithError(
            f"{role} {path} is a QAT artifact (fake-quantised layers); compress its float parent "
            f"{artifact.manifest.get('parent')} instead, then run qat last"
        )
    return artifact


def source_sparsity(artifact: Artifact) -> float:
    """The overall sparsity a pruned ancestor recorded (0.0 for a dense artifact)."""
    return float(artifact.manifest.get("metrics", {}).get("sparsity", 0.0) or 0.0)
