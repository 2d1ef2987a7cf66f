"""Output safety: edgesmith replaces or deletes only what it wrote, and one writer per output.

Users name output paths (``--out``); what is already there may be theirs. Like pip refusing to
overwrite files it did not install, edgesmith keeps a small JSON ledger, ``.edgesmith-owned``:

* a folder edgesmith creates gets a ledger saying the whole folder is ours (:func:`mark_owned_dir`),
  so a later run may replace or delete it;
* a file edgesmith writes into a folder it does not own (``compress sensitivity --out x.json`` in
  the user's working folder) is recorded in that folder's ledger with its sha256
  (:func:`record_written`): it stays replaceable only while its content is what edgesmith wrote.

Anything else is refused with :class:`~edgesmith.core.errors.EdgesmithError` (exit 2) naming
the path.

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
_TOOL = "edgesmith"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _sha256(path: Path) -> str:
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


def mark_owned_dir(folder: str | Path, *, purpose: str) -> None:
    """Record that edgesmith created ``folder``, so a later run may replace or delete it.

    Call it right after creating the folder (before writing into it), so that an interrupted run
    leaves a folder the next run may clean up.

    Args:
        folder: an existing folder edgesmith just created.
        purpose: what the folder is for (``"build"``, ``"artifact staging"``), kept for humans.
    """
    folder = Path(folder)
    ledger = _read_ledger(folder) or {"tool": _TOOL, "files": {}}
    ledger.update(owned_dir=True, purpose=purpose, created=ledger.get("created") or _now())
    _write_ledger(folder, ledger)


def record_written(path: str | Path) -> None:
    """Record a file edgesmith just wrote into a folder it may not own (name + sha256).

    The file stays replaceable by :func:`check_replaceable` only while its content is unchanged.
    """
    path = Path(path)
    folder = path.parent
    ledger = _read_ledger(folder) or {"tool": _TOOL, "files": {}, "owned_dir": False}
    ledger["files"][path.name] = _sha256(path)
    _write_ledger(folder, ledger)


def is_owned(path: str | Path) -> bool:
    """Whether edgesmith wrote ``path`` (a folder with our ledger, or a file recorded unchanged).

    A symbolic link is never ours: replacing it could reach whatever it points to.
    """
    path = Path(path)
    if path.is_symlink():
        return False
    if path.is_dir():
        ledger = _read_ledger(path)
        return bool(ledger and ledger.get("owned_dir") is True)
    if path.is_file():
        folder_ledger = _read_ledger(path.parent)
        if folder_ledger and folder_ledger.get("owned_dir") is True:
            return True
        expected = (folder_ledger or {}).get("files", {}).get(path.name)
        return isinstance(expected, str) and _sha256(path) == expected
    return False


def check_replaceable(path: str | Path, *, flag: str = "--out", hint: str = "") -> None:
    """Refuse to replace or delete ``path`` unless it is missing or edgesmith wrote it.

    Args:
        path: the file or folder about to be replaced or removed.
        flag: the option the user named it with, for the message.
        hint: an extra clause for the message (e.g. ``"; pass --overwrite to replace it"``).

    Raises:
        EdgesmithError: naming the path, when it exists and is not ours.
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    if is_owned(path):
        return
    kind = "folder" if path.is_dir() and not path.is_symlink() else "file"
    raise EdgesmithError(
        f"{flag}: {path} is a {kind} edgesmith did not write (or one changed since); "
        f"refusing to replace or delete it{hint or '; choose another path or move it away'}"
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
    """Delete ``path`` (file or folder) after :func:`check_replaceable` agreed; missing is fine."""
    path = Path(path)
    check_replaceable(path, flag=flag)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


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
