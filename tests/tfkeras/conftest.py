"""Fixtures shared by the tfkeras tests."""

from __future__ import annotations

from pathlib import Path

import pytest


def _keras_artifact(out: Path, model_bytes: bytes, *, trusted_model_code: bool) -> Path:
    """A train artifact whose ``model.h5`` is ``model_bytes`` (a hostile file, say)."""
    from edgesmith.core.artifacts import ArtifactWriter
    from edgesmith.core.manifest import DatasetRecord, InputRecord, Metrics
    from edgesmith.core.normalization import Normalization

    with ArtifactWriter(out) as writer:
        (writer.dir / "model.h5").write_bytes(model_bytes)
        writer.commit(
            model_files=["model.h5"],
            stage="train",
            technique="import",
            fmt="keras",
            config={},
            input_spec=InputRecord(shape=(8, 8, 1), normalization=Normalization()),
            labels=[str(i) for i in range(10)],
            dataset=DatasetRecord(spec="digits"),
            metrics=Metrics(accuracy=0.5, num_eval=2),
            trusted_model_code=trusted_model_code,
        )
    return out


@pytest.fixture
def keras_artifact():
    """``keras_artifact(out, model_bytes, trusted_model_code=...)`` writes such an artifact."""
    return _keras_artifact
