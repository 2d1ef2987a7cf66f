"""The long-lived child (``--serve``): many jobs through one start-up, errors that keep it alive.

Run on this machine's own Python (the prefix an emulator would stand in front of), so these
need no qemu; ``test_emulated_check.py`` and ``tests/export/test_emulated_parity.py`` run it
under qemu where it is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime import emulation, load
from edgesmith.runtime.child import ChildSession

FIXTURES = Path(__file__).parent / "fixtures"
HERE = emulation.Emulator(
    target="x86-64-avx2", argv=(sys.executable,), env={}, cpu="this Python", isa="x86-64-avx2",
    arch="x86_64",
)  # fmt: skip


@pytest.fixture
def pixels(digits):
    return digits.x_eval[:64]


@pytest.fixture
def session(monkeypatch):
    monkeypatch.setattr(emulation, "emulator", lambda target, flag="--emulate": HERE)
    with emulation.EmulatedSession("x86-64-avx2") as opened:
        yield opened


def native(path: Path, pixels: np.ndarray) -> np.ndarray:
    model = load(path)
    try:
        return np.asarray(model.predict(pixels), dtype=np.float32)
    finally:
        model.close()


def test_one_child_runs_several_files_as_this_process_does(session, pixels):
    for name in ("int8.tflite", "int8_io.onnx", "float.tflite"):
        ran = session.predict(FIXTURES / name, pixels)
        np.testing.assert_array_equal(ran.outputs, native(FIXTURES / name, pixels))
    assert ran.runtime == "litert" and ran.provider
    assert session.alive


def test_a_files_error_is_one_line_and_the_child_lives_on(session, pixels, tmp_path):
    with pytest.raises(EdgesmithError) as caught:
        session.predict(tmp_path / "missing.tflite", pixels)
    message = str(caught.value)
    assert "model not found" in message and "\n" not in message
    assert session.alive
    assert session.predict(FIXTURES / "int8.tflite", pixels).outputs.shape == (len(pixels), 10)


def test_a_child_that_ends_is_reported_with_its_exit(tmp_path):
    quitter = tmp_path / "quitter.py"
    quitter.write_text("import sys\nprint('edgesmith: error: gone', file=sys.stderr)\n")
    with ChildSession([sys.executable, str(quitter)], label="child") as child:
        with pytest.raises(EdgesmithError, match=r"child ended \(exit 0\): error: gone"):
            child.ask({"job": "predict"}, timeout=60)
        assert not child.alive


def test_a_child_past_its_time_is_stopped(tmp_path):
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text("import time\ntime.sleep(60)\n")
    child = ChildSession([sys.executable, str(sleeper)], label="child")
    with pytest.raises(EdgesmithError, match="took over 0.5 s and was stopped"):
        child.ask({"job": "predict"}, timeout=0.5)
    assert not child.alive


def test_an_unknown_job_is_refused_by_the_serving_child():
    with ChildSession([sys.executable], label="child") as child:
        with pytest.raises(EdgesmithError, match="unknown job 'train'"):
            child.ask({"job": "train"}, timeout=120)
        assert child.alive
