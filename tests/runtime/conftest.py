"""Runtime test fixtures: the committed tiny models, a fast timing plan, and a TF-free guard."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TF_MODULES = ("tensorflow", "keras", "tf_keras")


def tf_modules() -> set[str]:
    return {name for name in sys.modules if name.split(".")[0] in TF_MODULES}


@pytest.fixture(autouse=True)
def _no_tensorflow_imported():
    """Fail any runtime test that makes TensorFlow or Keras get imported."""
    before = tf_modules()
    yield
    new = tf_modules() - before
    assert not new, f"the runtime imported {sorted(new)[:3]}"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def digits():
    from edgesmith.core.datasets import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def reference() -> dict:
    data = json.loads((FIXTURES / "reference.json").read_text())
    data["probabilities"] = np.asarray(data["probabilities"], dtype=np.float32)
    return data


@pytest.fixture
def fast_plan():
    from edgesmith.runtime.timing import TimingPlan

    return TimingPlan(min_runs=30, min_seconds=0.05, warmup_runs=3, warmup_seconds=0.0, rounds=6)
