"""Progress lines for long work: to stderr, so stdout stays clean for ``--json`` and pipes."""

from __future__ import annotations

import sys
from collections.abc import Callable

Reporter = Callable[[str], None]


def silent(line: str) -> None:
    """A reporter that drops every line (``report=silent`` in scripts and tests)."""


def stderr_reporter(quiet: bool = False) -> Reporter:
    """A reporter that prints each line to stderr at once, or nothing when ``quiet``."""
    if quiet:
        return silent

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return report
