"""Keep the runtimes' own chatter off the user's terminal, without hiding real errors.

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` from C++ straight to
file descriptor 2, where Python's ``sys.stderr`` cannot reach it; onnxruntime phones home and
caches files unless told otherwise. This module is imported before either runtime.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

# Must be set before onnxruntime is first imported (STACK.md: it writes ~/.cache otherwise).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# Lines the runtimes print on every start that tell the user nothing they asked for.
NOISE_PREFIXES = (
    "INFO: Created TensorFlow Lite XNNPACK delegate",
    "INFO: Initialized TensorFlow Lite runtime",
)


def is_noise(line: str) -> bool:
    """True for a known start-up line of a runtime (dropped); False for anything else (kept)."""
    return line.strip().startswith(NOISE_PREFIXES)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Capture what native code writes to fd 2 in the block; replay all but the known noise.

    ``EDGESMITH_VERBOSE_TF=1`` (set by ``--debug``) lets everything through untouched.
    """
    if os.environ.get("EDGESMITH_VERBOSE_TF") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): nothing to filter
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [
                line
                for line in sink.read().decode(errors="replace").splitlines(keepends=True)
                if not is_noise(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
