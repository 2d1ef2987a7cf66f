"""Output safety: edgesmith replaces or deletes only what it wrote, and one writer per output.

Users name output paths (``--out``); what is already there may be theirs. Like pip refusing to
overwrite files it did not install, edgesmith keeps a small JSON ledger, ``.edgesmith-owned``,
in each folder it creates or writes into, listing the exact entries it wrote:

* a folder edgesmith creates is marked as made by edgesmith (:func:`mark_owned_dir`), so later
  runs may write into it; that alone does not make what is inside ours;
* every file edgesmith writes into a folder is recorded in that folder's ledger with its sha256
  (:func:`record_written`), and a finished folder (a published artifact, a build's bundle or
  bench results) is sealed just before it is published (:func:`seal_owned_dir`): every file,
  subfolder and link in it at that moment is recorded by relative path (sha256, ``dir`` or the
  link's target);
* a staging folder ``<x>.partial`` carries a different mark, "staging of x by edgesmith"
  (:func:`mark_staging_dir`): an interrupted run's leftover is removed whole by the next run
  writing ``x`` (its content was never recorded entry by entry), while a *published* folder
  that happens to be named ``x.partial`` (``--out x.partial``) is sealed, not staging, and is
  never taken for one.

A folder may be replaced or deleted only when every entry in it is ours: recorded and unchanged,
a marked subfolder that is itself all ours, a staging leftover, or the lock file of a run that is
gone (:func:`foreign_entry`). Anything else (a file the user added to ``bundle/``, a recorded
file the user edited) is refused with :class:`~edgesmith.core.errors.EdgesmithError` (exit 2)
naming that entry, and nothing is deleted. Folders marked by an edgesmith older than the ledger
list no entries, so their contents count as foreign once: build into a new folder.

:class:`OutputLock` (``<out>.lock``, created with ``O_CREAT | O_EXCL``) makes a second writer to
the same output fail at once instead of deleting the first one's staging folder. A lock left by a
process that no longer runs on this host is stale and taken over.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any

from edgesmith.core.errors import EdgesmithError

MARKER_NAME = ".edgesmith-owned"
LOCK_SUFFIX = ".lock"
STAGE_SUFFIX = ".partial"
_DIR = "dir"
_LINK = "link:"
_TOOL = "edgesmith"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_ledger(folder: Path) -> dict[str, Any] | None:
    """The folder's ledger, or None when it has none (or a foreign, unreadable or linked one)."""
    marker = folder / MARKER_NAME
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != _TOOL:
        return None
    files = data.get("files")
    data["files"] = files if isinstance(files, dict) else {}
    return data


def _write_ledger(folder: Path, ledger: dict[str, Any]) -> None:
    marker = folder / MARKER_NAME
    tmp = folder / (MARKER_NAME + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(ledger, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, marker)


def _is_marker_file(name: str) -> bool:
    """The ledger itself, or a temporary file of a ledger write that was cut short."""
    return name == MARKER_NAME or (name.startswith(MARKER_NAME + ".") and name.endswith(".tmp"))


def mark_owned_dir(folder: str | Path, *, purpose: str) -> None:
    """Record that edgesmith created ``folder``, so later runs may write into it.

    The mark does not make the folder's contents ours: each entry counts only once it is
    recorded (:func:`record_written`, :func:`seal_owned_dir`) or is itself a marked folder.
    Call it right after creating the folder, before writing into it.

    Args:
        folder: an existing folder edgesmith just created.
        purpose: what the folder is for (``"build"``, ``"quantize attempts"``), kept for humans.
    """
    folder = Path(folder)
    ledger = _read_ledger(folder) or {"tool": _TOOL, "files": {}}
    ledger.update(owned_dir=True, purpose=purpose, created=ledger.get("created") or _now())
    _write_ledger(folder, ledger)


def mark_staging_dir(folder: str | Path, final: str | Path, *, purpose: str) -> None:
    """Mark ``folder`` as edgesmith's staging of ``final`` (``<final>.partial``).

    Such a folder is written by one run and renamed to ``final`` once complete; an interrupted
    run's leftover is removed whole by the next run that stages ``final``
    (:func:`remove_stale_stage`). The mark names ``final``, so a published folder that is named
    like a staging folder is never taken for one.
    """
    folder = Path(folder)
    ledger = _read_ledger(folder) or {"tool": _TOOL, "files": {}}
    ledger.update(
        owned_dir=True,
        purpose=purpose,
        staging_of=Path(final).name,
        created=ledger.get("created") or _now(),
    )
    _write_ledger(folder, ledger)


def _walk(folder: Path, root: Path, entries: dict[str, str]) -> None:
    for entry in sorted(folder.iterdir()):
        if _is_marker_file(entry.name):
            continue
        rel = entry.relative_to(root).as_posix()
        if entry.is_symlink():
            entries[rel] = _LINK + os.readlink(entry)
        elif entry.is_dir():
            sub = _read_ledger(entry)
            if sub and sub.get("owned_dir") is True:
                continue  # a marked folder of its own: its own ledger speaks for it
            entries[rel] = _DIR
            _walk(entry, root, entries)
        elif entry.is_file():
            entries[rel] = sha256_file(entry)


def seal_owned_dir(folder: str | Path, *, purpose: str | None = None) -> None:
    """Record every entry now in ``folder`` as edgesmith's, and drop any staging mark.

    Call it on a staging folder that this run filled, just before renaming it into place: the
    published folder then lists exactly what edgesmith wrote (files with their sha256), so a
    later run may replace it only while nothing was added or changed. Marked subfolders keep
    their own ledgers and are not listed.
    """
    folder = Path(folder)
    ledger = _read_ledger(folder) or {"tool": _TOOL, "files": {}}
    entries: dict[str, str] = {}
    _walk(folder, folder, entries)
    ledger.pop("staging_of", None)
    ledger.update(owned_dir=True, files=entries, sealed=_now())
    if purpose is not None:
        ledger["purpose"] = purpose
    ledger["created"] = ledger.get("created") or _now()
    _write_ledger(folder, ledger)


def record_written(path: str | Path) -> None:
    """Record a file edgesmith just wrote in its folder's ledger (name + sha256).

    The file stays replaceable by :func:`check_replaceable` only while its content is unchanged.
    """
    path = Path(path)
    folder = path.parent
    ledger = _read_ledger(folder) or {"tool": _TOOL, "files": {}, "owned_dir": False}
    ledger["files"][path.name] = sha256_file(path)
    _write_ledger(folder, ledger)


def is_marked(folder: str | Path) -> bool:
    """Whether edgesmith created ``folder`` (its ledger says so); says nothing of its contents."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    ledger = _read_ledger(folder)
    return bool(ledger and ledger.get("owned_dir") is True)


def is_stage_of(folder: str | Path, final: str | Path) -> bool:
    """Whether ``folder`` is edgesmith's staging folder of ``final`` (mark and name agree)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    ledger = _read_ledger(folder)
    name = Path(final).name
    return bool(
        ledger
        and ledger.get("owned_dir") is True
        and ledger.get("staging_of") == name
        and folder.name == name + STAGE_SUFFIX
    )


def _stage_leftover(folder: Path) -> bool:
    ledger = _read_ledger(folder)
    staged = (ledger or {}).get("staging_of")
    return isinstance(staged, str) and is_stage_of(folder, folder.with_name(staged))


def _stale_lock(path: Path) -> bool:
    """Whether ``path`` is an edgesmith lock file of a run that is gone (taken over: removed).

    Raises:
        EdgesmithError: when it is the lock of a run still going.
    """
    if not path.name.endswith(LOCK_SUFFIX):
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    if not (isinstance(data, dict) and {"pid", "host", "token"} <= data.keys()):
        return False  # a user's poetry.lock is not ours
    OutputLock(path.with_name(path.name[: -len(LOCK_SUFFIX)])).acquire().release()
    return True


def _recorded(path: Path, ledgers: list[tuple[Path, dict[str, Any]]], value: str) -> bool:
    return any(files.get(path.relative_to(root).as_posix()) == value for root, files in ledgers)


def _foreign_in(folder: Path, ledgers: list[tuple[Path, dict[str, Any]]]) -> Path | None:
    own = _read_ledger(folder)
    if own is not None and own.get("owned_dir") is not True:
        ledgers = [*ledgers, (folder, own["files"])]  # files recorded one by one in here
    for entry in sorted(folder.iterdir()):
        if _is_marker_file(entry.name):
            continue
        if entry.is_symlink():
            if not _recorded(entry, ledgers, _LINK + os.readlink(entry)):
                return entry
        elif entry.is_dir():
            found = foreign_entry(entry) if is_marked(entry) else _foreign_in(entry, ledgers)
            if found is not None:
                return found
        elif entry.is_file():
            if _stale_lock(entry):
                continue
            named = any(entry.relative_to(root).as_posix() in files for root, files in ledgers)
            if not (named and _recorded(entry, ledgers, sha256_file(entry))):  # hash only if named
                return entry
        else:
            return entry  # a FIFO, socket or device: never ours
    return None


def foreign_entry(path: str | Path, *, unmarked_ok: bool = False) -> Path | None:
    """The first entry at or under ``path`` that edgesmith did not write, or None if all is ours.

    Ours: a file recorded unchanged in a ledger, a recorded link or folder, a marked folder all
    of whose entries are ours, a staging leftover (``<x>.partial`` marked as staging of ``x``),
    a lock file of a run that is gone. Folders marked before the ledger existed list nothing, so
    their entries count as foreign.

    Args:
        path: the file or folder about to be replaced or deleted.
        unmarked_ok: an unmarked folder at ``path`` is ours when everything in it is (a build
            step's folder before its key is written); otherwise it is foreign itself.

    Raises:
        EdgesmithError: when a live run's lock file is found (that run is still writing).
    """
    path = Path(path)
    if path.is_symlink():
        return path
    if path.is_file():
        return None if is_owned(path) else path
    if not path.is_dir():
        return None if not path.exists() else path
    if _stage_leftover(path):
        return None
    ledger = _read_ledger(path)
    if ledger is not None and ledger.get("owned_dir") is True:
        return _foreign_in(path, [(path, ledger["files"])])
    if unmarked_ok:
        return _foreign_in(path, [])
    return path


def is_owned(path: str | Path) -> bool:
    """Whether edgesmith wrote ``path``: a file recorded unchanged, or a folder all ours.

    A symbolic link is never ours: replacing it could reach whatever it points to.
    """
    path = Path(path)
    if path.is_symlink():
        return False
    if path.is_dir():
        return is_marked(path) and foreign_entry(path) is None
    if path.is_file():
        expected = (_read_ledger(path.parent) or {}).get("files", {}).get(path.name)
        return isinstance(expected, str) and sha256_file(path) == expected
    return False


def check_replaceable(
    path: str | Path, *, flag: str = "--out", hint: str = "", contents: bool = True
) -> None:
    """Refuse to replace or delete ``path`` unless it is missing or edgesmith wrote it.

    Args:
        path: the file or folder about to be replaced or removed.
        flag: the option the user named it with, for the message.
        hint: an extra clause for the message (e.g. ``"; pass --overwrite to replace it"``).
        contents: for a folder, also require every entry in it to be ours (it is about to be
            replaced whole); False for a folder that is only written into (a build's ``--out``).

    Raises:
        EdgesmithError: naming the path, or the first entry inside it that is not ours.
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    folder = path.is_dir() and not path.is_symlink()
    if folder and not contents and is_marked(path):
        return
    foreign = foreign_entry(path) if folder else (None if is_owned(path) else path)
    if foreign is None:
        return
    if foreign == path:
        kind = "folder" if folder else "file"
        raise EdgesmithError(
            f"{flag}: {path} is a {kind} edgesmith did not write (or one changed since); "
            f"refusing to replace or delete it{hint or '; choose another path or move it away'}"
        )
    raise EdgesmithError(
        f"{flag}: {foreign} was not written by edgesmith (or changed since); refusing to "
        f"replace or delete {path}, which holds it: move it away and run again"
    )


def check_files_writable(
    paths: list[Path], *, overwrite: bool = False, flag: str = "--out"
) -> None:
    """Refuse, before any work, to write over files someone else owns.

    Args:
        paths: the files a command is about to (re)write.
        overwrite: the user passed ``--overwrite``: replace files even if edgesmith did not
            write them (folders and links are still refused).
        flag: the option that named them, for the message.

    Raises:
        EdgesmithError: naming the first path that is a folder or a link, inside an artifact
            directory, or that exists and edgesmith did not write (unless ``overwrite``).
    """
    from edgesmith.core.artifacts import MANIFEST_NAME

    for path in paths:
        path = Path(path)
        if path.is_symlink() or path.is_dir():
            raise EdgesmithError(f"{flag}: {path} is a folder or a link; expected a file to write")
        if (path.parent / MANIFEST_NAME).is_file():  # --overwrite does not reach into artifacts
            raise EdgesmithError(
                f"{flag}: {path} is inside the artifact {path.parent}; an artifact is written "
                "whole by the stage that made it, never added to: choose a path outside it"
            )
        if not overwrite:
            check_replaceable(path, flag=flag, hint="; pass --overwrite to replace it")


def remove_owned(path: str | Path, *, flag: str = "--out") -> None:
    """Delete ``path`` (file or folder) after :func:`check_replaceable` agreed; missing is fine.

    Everything is checked before anything is deleted, so a refusal leaves ``path`` whole.
    """
    path = Path(path)
    check_replaceable(path, flag=flag)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def remove_stale_stage(stage: str | Path, final: str | Path, *, flag: str = "--out") -> None:
    """Remove ``stage`` when it is edgesmith's interrupted staging of ``final``; missing is fine.

    A folder of that name that is not marked as staging of ``final`` (the user's own, or a
    published artifact someone wrote with ``--out x.partial``) is refused, never deleted.

    Raises:
        EdgesmithError: naming ``stage``.
    """
    stage = Path(stage)
    if not (stage.exists() or stage.is_symlink()):
        return
    if not is_stage_of(stage, final):
        raise EdgesmithError(
            f"{flag}: {stage} is a folder edgesmith did not write as staging of "
            f"{Path(final).name} (an unfinished run's leftover); refusing to replace or delete "
            "it: move it away or choose another --out"
        )
    shutil.rmtree(stage)


def lock_path(out: str | Path) -> Path:
    """The lock file guarding ``out``: ``<out>.lock`` beside it."""
    out = Path(os.path.abspath(out))
    return out.with_name(out.name + LOCK_SUFFIX)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except (OverflowError, ValueError):
        return False
    return True


class OutputLock:
    """An exclusive lock on one output path, as a context manager.

    Example::

        with OutputLock(out):
            ...  # stage and publish ``out``

    The lock file holds ``{"pid", "host", "token", "created"}``. It is removed on exit only if it
    still holds our token. A lock whose process is gone on this host is stale and replaced; a
    lock from another host (a shared file system) is never taken over.

    Raises:
        EdgesmithError: on enter, when another live run holds the lock (naming its pid and host),
            or the lock file cannot be created.
    """

    def __init__(self, out: str | Path, *, flag: str = "--out"):
        self.out = Path(out)
        self.path = lock_path(out)
        self.flag = flag
        self.token = secrets.token_hex(8)
        self.held = False

    def _create(self) -> bool:
        payload = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "token": self.token,
            "created": _now(),
        }
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(payload) + "\n")
        return True

    def _holder(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def acquire(self) -> OutputLock:
        """Take the lock or raise :class:`EdgesmithError` naming who holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EdgesmithError(
                f"{self.flag} {self.out}: cannot create its folder: {exc}"
            ) from None
        for _ in range(2):
            try:
                if self._create():
                    self.held = True
                    return self
            except OSError as exc:
                raise EdgesmithError(
                    f"{self.flag} {self.out}: cannot lock {self.path}: {exc}"
                ) from None
            holder = self._holder()
            pid, host = (holder or {}).get("pid"), (holder or {}).get("host")
            stale = (
                isinstance(pid, int)
                and not isinstance(pid, bool)
                and host == socket.gethostname()
                and not _pid_alive(pid)
            )
            if not stale:
                who = f"pid {pid} on {host}" if holder else "an unreadable lock"
                raise EdgesmithError(
                    f"{self.flag} {self.out} is in use by another edgesmith run ({who}, lock "
                    f"{self.path}); wait for it to finish, or remove the lock if that run is gone"
                )
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # stale: its process is gone; retry once
        raise EdgesmithError(f"{self.flag} {self.out}: lost the race for {self.path}; try again")

    def release(self) -> None:
        """Remove the lock file if it is still ours."""
        if not self.held:
            return
        self.held = False
        holder = self._holder()
        if holder and holder.get("token") == self.token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()
