"""A command's prose: its summary, description and examples, kept as text files.

Each command's texts live in ``<package>/help/<command>.txt`` beside the stage that owns the
command, so a reviewer reads them as prose, ``--help`` shows them unchanged, and a test runs
every example through the real parser. This module only reads them; it knows nothing of
argparse.
"""

from __future__ import annotations

import dataclasses

HELP_SEPARATOR = "---"


@dataclasses.dataclass(frozen=True)
class CommandHelp:
    """A command's texts: the line in its parent's list, the description, the examples."""

    summary: str
    description: str
    epilog: str


def read_help(package: str, name: str, **fields: str) -> CommandHelp:
    """Read ``<package>/help/<name>.txt``: summary, description and epilog between ``---`` lines.

    ``$data_specs`` stands for the data-spec help every command with ``--data`` shows; other
    ``$name`` fields are filled from ``fields`` (``$`` followed by anything else stays as it is,
    e.g. ``$EDGESMITH_DATA_DIR``).
    """
    from importlib import resources
    from string import Template

    from edgesmith.core.datasets import SPEC_HELP

    text = (resources.files(package) / "help" / f"{name}.txt").read_text(encoding="utf-8")
    parts = text.split(f"\n{HELP_SEPARATOR}\n")
    if len(parts) != 3:
        raise ValueError(f"{package}/help/{name}.txt must have 3 parts between --- lines")
    filled = Template(parts[2]).safe_substitute(data_specs=SPEC_HELP.rstrip(), **fields)
    return CommandHelp(parts[0].strip(), parts[1].strip(), filled.rstrip() + "\n")
