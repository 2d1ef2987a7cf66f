"""Keep the terminal clean while converters run: they print to stdout, stderr and ``warnings``.

The TFLite converter prints MLIR statistics to file descriptor 1 ("fully_quantize: 0, ...") and
C++ log lines to descriptor 2; tf2onnx and onnxruntime's quantiser log through ``logging``.
Output is captured and shown only if the block fails, so a real error keeps its explanation;
``EDGESMITH_VERBOSE_TF=1`` (``--debug``) lets everything through.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings

from edgesmith._tensorflow import quiet_native_stderr

NOISY_LOGGERS = ("tf2onnx", "onnxruntime", "root", "absl", "tensorflow")


@contextlib.contextmanager
def quiet_stdout():
    """Silence file descriptor 1 (native prints); replay it to stderr if the block fails."""
    if os.environ.get("EDGESMITH_VERBOSE_TF") == "1":
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        except BaseException:
            sys.stdout.flush()
            os.dup2(saved, 1)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def quiet_loggers():
    """Raise the converters' Python loggers to ERROR for the block, then restore them."""
    if os.environ.get("EDGESMITH_VERBOSE_TF") == "1":
        yield
        return
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS] + [logging.getLogger()]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, before, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def quiet_conversion():
    """All of the above, plus Python warnings, for one conversion."""
    with quiet_stdout(), quiet_native_stderr(), quiet_loggers(), warnings.catch_warnings():
        if os.environ.get("EDGESMITH_VERBOSE_TF") != "1":
            warnings.simplefilter("ignore")
        yield
