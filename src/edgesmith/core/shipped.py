"""Configs that edgesmith ships by name (device profiles, build recipes) or a user gives by path.

``--device cpu-x86`` and ``--recipe default`` name YAML files inside the package; anything that
looks like a file (it exists, or ends in ``.yaml``, ``.yml`` or ``.json``) is read as one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from edgesmith.core.config import load_config_file
from edgesmith.core.errors import EdgesmithError

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def shipped_names(package: str) -> list[str]:
    """Names of the YAML configs that come with edgesmith in ``package``."""
    folder = resources.files(package)
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_shipped_or_file(text: str, package: str, *, kind: str, files: str) -> dict[str, Any]:
    """The mapping a config file holds, the file given by its path or a shipped config's name.

    Args:
        text: a path, or the name of a config shipped in ``package``.
        package: where the shipped configs lie (``edgesmith.devices``).
        kind: what they are, for the message that refuses an unknown name (``device profile``).
        files: what a path should hold, for the same message (``profile YAML``).

    Raises:
        EdgesmithError: for an unknown name (the shipped ones are listed) or a file
            :func:`~edgesmith.core.config.load_config_file` refuses.
    """
    path = Path(text)
    if path.suffix.lower() in CONFIG_SUFFIXES or path.exists():
        return load_config_file(path)
    known = shipped_names(package)
    if text not in known:
        raise EdgesmithError(
            f"unknown {kind} {text!r}: expected one of {', '.join(known)} "
            f"or the path of a {files} file"
        )
    with resources.as_file(resources.files(package) / f"{text}.yaml") as file:
        return load_config_file(file)
