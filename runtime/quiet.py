"""Keep the runtimes' own chatter off the user's terminal, without hiding real errors.

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` from C++ straight to
file descriptor 2, where Python's ``sys.stderr`` cannot reach it; onnxruntime phones home and
caches files unless told otherwise. This module is imported before either runtime.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
from collections.abc import Iterator

# Must be set before onnxruntime is first imported (STACK.md: it writes ~/.cache otherwise).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# Lines the runtimes print on every start that tell the user nothing they asked for.
# LiteRT logs at INFO level by default (delegate creation, accelerator registry, environment),
# and warns about optional accelerators and vendor plugins a machine does not have.
NOISE_PREFIXES = (
    "INFO: ",
    "WARNING: [npu_registry.cc",
    "WARNING: [compiler_plugin.cc",
    "\u2514 Could not load shared library",
)


def is_noise(line: str) -> bool:
    """True for a known start-up line of a runtime (dropped); False for anything else (kept)."""
    return line.strip().startswith(NOISE_PREFIXES)


def _flush_c_streams() -> None:
    """``fflush(NULL)``: push out what native code buffered in C stdio streams."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to reach (unusual platforms)
        pass


@contextlib.contextmanager
def quiet_native_stderr(replay: bool = True) -> Iterator[list[str]]:
    """Capture what native code writes to fd 2 in the block; replay all but the known noise.

    Args:
        replay: write the lines that are not noise back to stderr when the block ends; with
            ``False`` the caller takes them from the yielded list (filled at the end) instead.

    ``EDGESMITH_VERBOSE_TF=1`` (set by ``--debug``) lets everything through untouched.
    """
    captured: list[str] = []
    if os.environ.get("EDGESMITH_VERBOSE_TF") == "1":
        yield captured
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): nothing to filter
        yield captured
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            _flush_c_streams()  # lines still in a C stdio buffer belong to the block
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [
                line
                for line in sink.read().decode(errors="replace").splitlines(keepends=True)
                if not is_noise(line)
            ]
            captured.extend(line.rstrip("\n") for line in kept)
            if kept and replay:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
