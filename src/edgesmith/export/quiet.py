"""Keep the terminal clean while converters run: they print to stdout, stderr and ``warnings``.

The TFLite converter prints MLIR statistics to file descriptor 1 ("fully_quantize: 0, ...") and
C++ log lines to descriptor 2; tf2onnx and onnxruntime's quantiser log through ``logging``.
Output is captured and shown only if the block fails, so a real error keeps its explanation;
``EDGESMITH_VERBOSE_TF=1`` (``--debug``) lets everything through.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

from edgesmith.core.quiet import capture_fd, verbose

NOISY_LOGGERS = ("tf2onnx", "onnxruntime", "root", "absl", "tensorflow")


@contextlib.contextmanager
def quiet_loggers():
    """Raise the converters' Python loggers to ERROR for the block, then restore them."""
    if verbose():
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
    with capture_fd(1), capture_fd(2), quiet_loggers(), warnings.catch_warnings():
        if not verbose():
            warnings.simplefilter("ignore")
        yield
