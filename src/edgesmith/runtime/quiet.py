"""Keep the runtimes' own chatter off the user's terminal, without hiding real errors.

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` from C++ straight to
file descriptor 2, where Python's ``sys.stderr`` cannot reach it; onnxruntime phones home and
caches files unless told otherwise. This module is imported before either runtime.
"""

from __future__ import annotations

import os

from edgesmith.core.quiet import capture_fd

# Must be set before onnxruntime is first imported (it writes ~/.cache otherwise).
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


def quiet_native_stderr(replay: bool = True):
    """Capture what native code writes to fd 2 in the block; replay all but the known noise.

    Args:
        replay: write the lines that are not noise back to stderr when the block ends; with
            ``False`` the caller takes them from the yielded list (filled at the end) instead.
    """
    return capture_fd(2, keep=lambda line: not is_noise(line), replay=replay)
