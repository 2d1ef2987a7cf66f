"""A missing tfmot, or a Python without distutils, is one line naming the fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("tensorflow")

PROBE = (
    "import sys\n"
    "sys.modules[{blocked!r}] = None\n"
    "from edgesmith.core.errors import EdgesmithError\n"
    "try:\n"
    "    from edgesmith.tfkeras import tfmot\n"
    "except EdgesmithError as e:\n"
    "    print('refused:', e)\n"
)


def _refusal(blocked: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(blocked=blocked)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("refused:")]
    assert len(lines) == 1, result.stdout + result.stderr[-2000:]
    return lines[0]


@pytest.mark.slow
def test_a_missing_tfmot_names_the_extra():
    line = _refusal("tensorflow_model_optimization")
    assert "pip install 'edgesmith[compress]'" in line


@pytest.mark.slow
def test_a_python_without_distutils_names_setuptools():
    line = _refusal("distutils")
    assert "distutils" in line and "pip install setuptools" in line
