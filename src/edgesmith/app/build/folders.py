"""The build folder (``build --out DIR``): what a build may replace, and how it writes there.

Users name the folder, so what is already in it may be theirs. A build therefore works only in
a folder that is new, empty, or made by an earlier build (it carries edgesmith's ownership
marker, :mod:`edgesmith.core.outputs`), and checks every path it is going to replace (the bundle,
the bench folder, the candidates table, leftovers of an interrupted run) before any work
starts: anything edgesmith did not write is refused with one line naming it (exit 2), never
moved or deleted. ``<DIR>.lock`` keeps a second build out of the same folder while one runs.

Every file set is written to a staging path beside its final name (marked as staging of that
name) and renamed into place, so each is complete or absent; just before the rename the staged
folder's ledger is sealed with the exact entries written, and the previous copy is removed only
once the new one is in place and only while it holds nothing but what edgesmith wrote: a file the
user added to ``bundle/`` or ``work/bench/`` (or edited there) stops the build, naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.outputs import (
    STAGE_SUFFIX,
    check_replaceable,
    mark_owned_dir,
    mark_staging_dir,
    record_written,
    remove_owned,
    remove_stale_stage,
    seal_owned_dir,
)

PURPOSE = "edgesmith build"
OLD_SUFFIX = ".old"
# Everything under OUT that a build replaces or deletes (the step folders under work/ are
# checked where they are cleared, see cache.clear).
REPLACED = (
    "work/bench",
    "work/bench.partial",
    "work/bench.old",
    "bundle",
    "bundle.partial",
    "bundle.old",
    "candidates.json",
    "candidates.json.partial",
    "candidates.md",
    "candidates.md.partial",
)


def check_build_dir(out: Path) -> None:
    """Refuse, before any work, a ``--out`` the build could not use without touching user files.

    ``out`` may be missing, an empty folder, or a folder an earlier build wrote; in the last
    case each path the build replaces must be missing or edgesmith's.

    Raises:
        EdgesmithError: naming the link, file, foreign folder or foreign path (exit code 2).
    """
    if out.is_symlink():
        raise EdgesmithError(f"--out {out} is a symbolic link; expected a build directory")
    if out.exists() and not out.is_dir():
        raise EdgesmithError(f"--out {out} is a file; expected a build directory")
    if not out.is_dir() or not any(out.iterdir()):
        return
    check_replaceable(  # written into, never replaced whole: the user's notes beside are fine
        out,
        hint="; expected a new or empty folder, or one an earlier edgesmith build wrote",
        contents=False,
    )
    check_replaceable(out / "work", contents=False)  # its steps are checked where cleared
    for name in REPLACED:
        check_replaceable(out / name)


def claim_build_dir(out: Path) -> Path:
    """Create ``out`` and ``out/work`` (when missing) and mark both as edgesmith's.

    Returns:
        The work folder, ``out/work``.
    """
    out.mkdir(parents=True, exist_ok=True)
    mark_owned_dir(out, purpose=PURPOSE)
    work = out / "work"
    work.mkdir(exist_ok=True)
    mark_owned_dir(work, purpose=f"{PURPOSE} work")
    return work


def fresh_stage(final: Path, purpose: str) -> Path:
    """An empty, marked staging folder ``<final>.partial`` (an earlier run's leftover removed).

    Raises:
        EdgesmithError: when a ``<final>.partial`` that edgesmith did not write is in the way.
    """
    stage = final.with_name(final.name + STAGE_SUFFIX)
    remove_stale_stage(stage, final)
    stage.mkdir(parents=True)
    mark_staging_dir(stage, final, purpose=purpose)
    return stage


def publish_dir(stage: Path, final: Path) -> Path:
    """Rename a complete ``stage`` to ``final``, replacing an earlier ``final`` of edgesmith's.

    The earlier copy is renamed to ``<final>.old`` first and removed only once the new one is
    in place, so ``final`` is always a complete folder or absent.

    Raises:
        EdgesmithError: when ``final`` (or a ``<final>.old``) is not edgesmith's.
    """
    check_replaceable(final)
    seal_owned_dir(stage)  # lists exactly what this run wrote, so the next run may replace it
    if final.exists():
        old = final.with_name(final.name + OLD_SUFFIX)
        remove_owned(old)
        os.replace(final, old)
        os.replace(stage, final)
        remove_owned(old)
    else:
        os.replace(stage, final)
    return final


def write_text(path: Path, text: str) -> None:
    """Write ``path`` through ``<path>.partial`` and a rename; refuse to replace a foreign file.

    Raises:
        EdgesmithError: when ``path`` or its staging name is not edgesmith's.
    """
    check_replaceable(path)
    stage = path.with_name(path.name + STAGE_SUFFIX)
    remove_owned(stage)
    stage.write_text(text, encoding="utf-8")
    record_written(stage)  # an interrupted run's leftover stays ours
    os.replace(stage, path)
    record_written(path)  # replaceable by the next build while unchanged
