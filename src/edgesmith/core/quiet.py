"""Capture what native code prints to a file descriptor, so the terminal shows only what matters.

TensorFlow, the TFLite converter and LiteRT write from C++ straight to file descriptors 1 and 2,
where Python's ``sys.stdout``/``sys.stderr`` and log levels cannot reach. Every stage silences
them the same way: capture the descriptor for the block, keep the lines a filter accepts, and
replay everything if the block fails, so a real error keeps its explanation.
``EDGESMITH_VERBOSE_TF=1`` (set by ``--debug``) lets everything through untouched.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
from collections.abc import Callable, Iterator


def verbose() -> bool:
    """Whether the user asked to see the native libraries' own output (``--debug``)."""
    return os.environ.get("EDGESMITH_VERBOSE_TF") == "1"


def _flush_c_streams() -> None:
    """``fflush(NULL)``: push out what native code buffered in C stdio streams."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to reach (unusual platforms)
        pass


def _drop(line: str) -> bool:
    return False


@contextlib.contextmanager
def capture_fd(
    fd: int, *, keep: Callable[[str], bool] = _drop, replay: bool = True
) -> Iterator[list[str]]:
    """Capture file descriptor ``fd`` for the block.

    Args:
        fd: 1 (stdout) or 2 (stderr).
        keep: which captured lines still matter on success (by default none).
        replay: write the kept lines to stderr when the block ends; with ``False`` the caller
            takes them from the yielded list (filled at the end) instead.

    Yields:
        A list that receives the kept lines (without newlines) when the block ends.

    On an exception every captured line is written to stderr before it propagates.
    """
    captured: list[str] = []
    if verbose():
        yield captured
        return
    stream = sys.stdout if fd == 1 else sys.stderr
    try:
        stream.flush()
        saved = os.dup(fd)
    except (OSError, ValueError):  # no usable descriptor (embedded interpreters): nothing to do
        yield captured
        return
    failed = False
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield captured
        except BaseException:
            failed = True
            raise
        finally:
            stream.flush()
            _flush_c_streams()  # lines still in a C stdio buffer belong to the block
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            lines = sink.read().decode(errors="replace").splitlines(keepends=True)
            kept = lines if failed else [line for line in lines if keep(line)]
            captured.extend(line.rstrip("\n") for line in kept)
            if kept and (replay or failed):
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
