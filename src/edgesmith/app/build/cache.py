"""Content-addressed work directories: a finished step is found again by its inputs' key.

The key of a step is the sha256 of what it does (the fully resolved config) and what it starts
from (the parent artifact's id, itself a hash of the model files). The key names the step's
directory and is stored inside it (``build-key.json``), so a re-run with the same inputs finds
the finished artifact and reuses it, and any change (a setting, a retrained parent) gives a new
key and a new directory. Stages publish their artifacts atomically, so a directory that reads
back as an artifact is complete; anything else under a key's directory is a leftover to clear.

A step's directory is cleared only when edgesmith made all of it: a finished step carries the
ownership ledger (:mod:`edgesmith.core.outputs`, recording its key file), its artifacts carry
their own sealed ledgers, and an interrupted one holds only the stages' staging folders or stale
lock files of runs that are gone. A file or folder anyone else put there, or a file of ours that
was edited, stops the build with one line naming it; nothing is deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from edgesmith.core.artifacts import Artifact, read_artifact
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.outputs import foreign_entry, mark_owned_dir, seal_owned_dir

KEY_FILE = "build-key.json"
SHORT = 12


def step_key(kind: str, config: dict[str, Any], parent: str | None) -> str:
    """The sha256 over a step's kind, resolved config and parent artifact id."""
    document = json.dumps(
        {"kind": kind, "config": config, "parent": parent}, sort_keys=True, default=str
    )
    return hashlib.sha256(document.encode()).hexdigest()


def step_dir(root: Path, name: str, key: str) -> Path:
    """``root/<name>-<first 12 hex digits of key>``."""
    return root / f"{name}-{key[:SHORT]}"


def write_key(directory: Path, kind: str, key: str, config: dict[str, Any], parent: str | None):
    """Record the key and its inputs in ``directory/build-key.json`` (temp file, then rename).

    Call it once the step's work is done: the directory is marked as edgesmith's and its ledger
    sealed with every entry now in it (the stage's own summary files included), so that a later
    run may clear it, and only while nothing was added or changed.
    """
    mark_owned_dir(directory, purpose="edgesmith build step")
    record = {"kind": kind, "key": key, "parent": parent, "config": config}
    tmp = directory / (KEY_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, directory / KEY_FILE)
    seal_owned_dir(directory)  # the step's work is done: what is here now is edgesmith's


def stored_key(directory: Path) -> str | None:
    """The key recorded in ``directory``, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((directory / KEY_FILE).read_text(encoding="utf-8")).get("key")
    except (OSError, ValueError, AttributeError):
        return None


def finished(directory: Path, key: str, artifact: Path) -> Artifact | None:
    """The artifact at ``artifact`` when ``directory`` holds ``key`` and it reads back intact.

    A key mismatch or an artifact that fails to read (missing, changed files) means the work
    is not reusable; the caller then clears ``directory`` and redoes it.
    """
    if stored_key(directory) != key:
        return None
    try:
        return read_artifact(artifact)
    except EdgesmithError:
        return None


def clear(directory: Path) -> None:
    """Remove an unfinished step's leftovers so that the step can run again from scratch.

    Raises:
        EdgesmithError: naming the first thing in ``directory`` that edgesmith did not write
            (exit code 2); then nothing is removed.
    """
    if not (directory.exists() or directory.is_symlink()):
        return
    foreign = _foreign(directory)
    if foreign is not None:
        raise EdgesmithError(
            f"--out: {foreign} is in the build's work folder but edgesmith did not write it; "
            f"refusing to delete {directory}: move it away and run again"
        )
    shutil.rmtree(directory)


def _foreign(path: Path) -> Path | None:
    """The first path under ``path`` that edgesmith did not write, or None when all is ours.

    The step folder itself may be unmarked (an interrupted first run writes its key last);
    everything in it must then be ours (:func:`edgesmith.core.outputs.foreign_entry`).
    """
    return foreign_entry(path, unmarked_ok=True)
