"""The two kinds of failure the CLI maps onto exit codes: bad input (2) and a failed check (1)."""

from __future__ import annotations


class EdgesmithError(Exception):
    """Bad input or an impossible request: a one-line message for the user, exit code 2.

    The message names the offending value and what was expected, for example
    ``"sparsity must be in [0, 1). Received: 1.2"``.
    """

    exit_code = 2


class CheckFailed(EdgesmithError):
    """A check ran and its verdict is negative (a regression, a parity mismatch): exit code 1."""

    exit_code = 1
