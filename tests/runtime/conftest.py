"""Runtime test fixtures: the committed tiny models, a fast timing plan, a fake clock, TF guard."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
FAKE_CLOCK = Path(__file__).parent / "fake_clock.py"
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


@pytest.fixture
def one_line_error(capsys):
    """``one_line_error() -> str``: what the CLI wrote to stderr, asserted to be one error line."""

    def read() -> str:
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert err.startswith("edgesmith: error: ") and err.count("\n") == 1, err
        return err

    return read


@pytest.fixture(scope="session")
def fake_bench_clock():
    """``with fake_bench_clock({model file: ms}) as clock``: see ``fake_clock.py`` here."""
    spec = importlib.util.spec_from_file_location("edgesmith_tests_fake_clock", FAKE_CLOCK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fake_bench_clock
