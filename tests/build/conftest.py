"""Build test fixtures: the one line a refused ``edgesmith build`` leaves on stderr."""

from __future__ import annotations

import subprocess

import pytest


def _error_line(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


@pytest.fixture(scope="session")
def error_line():
    """``error_line(run) -> str``: a CLI run's stderr, asserted to be one line, with exit 2."""
    return _error_line
