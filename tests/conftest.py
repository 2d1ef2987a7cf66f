"""Shared fixtures: a tiny trained artifact, and the shared CIFAR-10 file when it is present."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _no_data_dir(monkeypatch, tmp_path_factory):
    """No $EDGESMITH_DATA_DIR unless a test sets one, and no downloads: tests stay offline.

    A user's env must not leak in, and a spec such as ``cifar10`` must fail at once (as on a
    machine without the network) rather than fetch 170 MB into the user's cache.
    """
    from edgesmith.core.datasets import download

    def offline(url: str) -> bytes:
        raise OSError(f"tests do not download ({url})")

    monkeypatch.delenv("EDGESMITH_DATA_DIR", raising=False)
    monkeypatch.setattr(download, "fetch_url", offline)
    user_cache = tmp_path_factory.getbasetemp() / "user-cache"
    monkeypatch.setattr(
        download, "cache_dir", lambda: Path(os.environ.get("EDGESMITH_DATA_DIR") or user_cache)
    )


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    """The folder holding the real cifar10.npz; tests using it skip on a fresh clone."""
    if not (SHARED_DATA / "cifar10.npz").is_file():
        pytest.skip("../shared/data/cifar10.npz is not present")
    return SHARED_DATA


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*args) -> (exit code, stdout, stderr)`` through ``edgesmith.app.cli.main``.

    Every call also asserts that no traceback reached the user.
    """
    from edgesmith.app.cli import main

    def run(*args) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return run


def _commit_artifact(writer, model_file: str = "model.bin", **fields):
    """``writer.commit`` of ``model_file``, over defaults for a 2-class 8x8x1 keras model."""
    from edgesmith.core.manifest import DatasetRecord, InputRecord, Metrics

    defaults = dict(
        model_files=[model_file],
        stage="train",
        technique="resnet8",
        fmt="keras",
        config={},
        input_spec=InputRecord(shape=(8, 8, 1)),
        labels=["a", "b"],
        dataset=DatasetRecord(spec="digits"),
        metrics=Metrics(accuracy=0.5, num_eval=2),
    )
    return writer.commit(**{**defaults, **fields})


def _write_artifact(out: Path, files: dict[str, bytes] | None = None, **fields):
    """An artifact committed at ``out`` holding ``files`` (the first is the model)."""
    from edgesmith.core.artifacts import ArtifactWriter

    files = files or {"model.bin": b"weights"}
    with ArtifactWriter(out) as writer:
        for name, data in files.items():
            (writer.dir / name).write_bytes(data)
        return _commit_artifact(writer, next(iter(files)), **fields)


@pytest.fixture(scope="session")
def commit_artifact():
    """``commit_artifact(writer, model_file, **commit_fields) -> Artifact``, no training."""
    return _commit_artifact


@pytest.fixture(scope="session")
def write_artifact():
    """``write_artifact(out, {name: bytes}, **commit_fields) -> Artifact``: a fake artifact."""
    return _write_artifact


def _run_python(code: str, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def run_python():
    """``run_python(code, *args) -> CompletedProcess``: ``python -c code args``, output captured.

    A fresh interpreter, for what one test process cannot show (what gets imported, what a
    library prints at start-up or at exit).
    """
    return _run_python


@pytest.fixture(scope="session")
def digits_artifact(tmp_path_factory) -> Path:
    """A resnet8 trained 2 epochs on digits (a few seconds), shared by read-only tests."""
    from edgesmith.core.progress import silent
    from edgesmith.train import TrainConfig, train

    out = tmp_path_factory.mktemp("artifacts") / "digits_resnet8"
    train(TrainConfig(data="digits", model="resnet8", epochs=2), out, report=silent)
    return out


# Session fixtures that train or export models: a test using one is in the full tier only, so
# that `pytest -m "not slow"` stays a quick tier (no test there pays for a training run).
TRAINING_FIXTURES = frozenset(
    {
        "digits_artifact",
        "exported_all",
        "pruned_artifact",
        "tiny_artifact",
        "logits_artifact",
        "no_data_artifact",
    }
)


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses a training fixture as slow (see TRAINING_FIXTURES)."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item):
    """``@pytest.mark.emulated(TARGET)``: skip where TARGET cannot run, with edgesmith's reason.

    The reason is the product's own one-line error (which package to install, which env to
    make), so a skipped emulated test says exactly what the machine lacks.
    """
    for mark in item.iter_markers("emulated"):
        from edgesmith.core.errors import EdgesmithError
        from edgesmith.runtime import emulation

        try:
            emulation.emulator(mark.args[0])
        except EdgesmithError as exc:
            pytest.skip(str(exc))


def pytest_report_header(config):
    return (
        f"EDGESMITH shared data: {'present' if SHARED_DATA.is_dir() else 'absent'}; "
        f"cpus: {os.cpu_count()}"
    )


_SESSIONS: list = []


def pytest_sessionfinish(session, exitstatus):
    """A run that collected no tests is a failure (exit 1), never pytest's quiet exit 5."""
    if exitstatus == 5:
        session.exitstatus = 1
        print("\nedgesmith: no tests were collected or selected; that is a failure here")
    _SESSIONS.append(session)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the test process without running native libraries' exit-time destructors.

    With TensorFlow 2.21, LiteRT and ONNX Runtime all loaded in one process, a destructor at
    interpreter exit aborts (SIGABRT) after every test has passed and the summary is printed;
    the exit status must be the session's, not that of a library's teardown.
    """
    if _SESSIONS and "tensorflow" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(_SESSIONS[-1].exitstatus))
