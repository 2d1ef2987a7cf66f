"""Fixtures shared by the tfkeras tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def keras_artifact(write_artifact):
    """``keras_artifact(out, model_bytes, trusted_model_code=...)`` writes a train artifact.

    Its ``model.h5`` is ``model_bytes`` (a hostile file, say).
    """
    from edgesmith.core.manifest import InputRecord
    from edgesmith.core.normalization import Normalization

    def make(out: Path, model_bytes: bytes, *, trusted_model_code: bool) -> Path:
        return write_artifact(
            out,
            {"model.h5": model_bytes},
            technique="import",
            input_spec=InputRecord(shape=(8, 8, 1), normalization=Normalization()),
            labels=[str(i) for i in range(10)],
            trusted_model_code=trusted_model_code,
        ).path

    return make
