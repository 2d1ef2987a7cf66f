"""Argument types, the help formatter and the artifact printout every sub-command shares.

argparse turns an ``ArgumentTypeError`` into a usage error (exit 2) naming the flag, so a bad
number is refused before any work, in the same words everywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line, like every other bad input.

    argparse prints the whole usage block before its message; edgesmith's contract is one line
    naming the value and what was expected (exit 2), with ``--help`` one command away. Every
    sub-command parser inherits this class through ``add_subparsers``.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE (see PROG --help)`` and exit 2."""
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def formatter(prog: str) -> argparse.HelpFormatter:
    """Keep the examples' line breaks in ``--help`` and align the flags."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {least}. Received: {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (threads, batch sizes, epochs)."""
    return _whole(text, 1)


def count(text: str) -> int:
    """A whole number >= 0 (run counts, where 0 means none)."""
    return _whole(text, 0)


def seconds(text: str) -> float:
    """A finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0. Received: {text!r}")
    return value


def print_artifact(args: argparse.Namespace, artifact) -> int:
    """Print a written artifact's path, or its manifest with ``--json``; return exit code 0."""
    if args.json:
        print(json.dumps(artifact.manifest, indent=2))
    else:
        print(artifact.path)
    return 0
