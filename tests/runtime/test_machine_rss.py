"""Peak memory is this process's own, not a large parent's (ru_maxrss survives fork and exec)."""

import subprocess
import sys

import pytest


def test_peak_rss_of_a_child_is_not_its_parents(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("VmHWM is Linux's")
    code = (
        "import subprocess, sys\n"
        "ballast = bytearray(400 * 2**20)\n"  # the parent touches 400 MiB
        "for i in range(0, len(ballast), 4096): ballast[i] = 1\n"
        "child = 'from edgesmith.runtime.machine import peak_rss_mb; print(peak_rss_mb())'\n"
        "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True,"
        " check=True).stdout)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert float(result.stdout.strip()) < 300
