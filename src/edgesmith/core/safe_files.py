"""Bounded reading of files a user may have been handed: regular files only, sizes checked.

A data set, a profile or a recipe may come from anywhere, so a small hostile file must end in
one short error line (exit 2), never in a hang, a crash or gigabytes of memory:

- only regular files are read: a FIFO or a device (``/dev/zero``) would block or never end;
- a config file is read up to a size bound, and its YAML may not use anchors or aliases (a few
  hundred bytes of nested aliases expand to millions of values);
- an allocation a file's header announces is checked against the memory available first.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

from edgesmith.core.errors import EdgesmithError

MAX_CONFIG_BYTES = 1 << 20
"""Largest config file (profile, recipe, ``--config``) read: 1 MiB; shipped ones are ~1 KiB."""

MAX_MESSAGE_VALUE = 60
"""Characters of an offending value an error message quotes (head and tail kept)."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def short(value: Any, limit: int = MAX_MESSAGE_VALUE) -> str:
    """``value`` for an error message, on one line and at most ``limit`` characters.

    A path is shown as is, anything else as its repr (see :func:`clip` for plain text).
    """
    return clip(str(value) if isinstance(value, Path) else repr(value), limit)


def clip(text: str, limit: int = MAX_MESSAGE_VALUE) -> str:
    """``text`` on one line of at most ``limit`` characters.

    The middle is elided, so a path keeps its file name.
    """
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    head = (limit - 3) // 2
    return text[:head] + "..." + text[len(text) - (limit - 3 - head) :]


def one_line(message: str, limit: int = 190) -> str:
    """``message`` squeezed onto one line of at most ``limit`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def human_bytes(count: int) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{count:,} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_regular_file(path: str | Path, what: str, max_bytes: int | None = None) -> os.stat_result:
    """Refuse anything but an existing regular file (symlinks followed) of at most ``max_bytes``.

    Args:
        path: the file.
        what: how messages name it, e.g. ``"config file"`` (-> ``config file not found: x``).
        max_bytes: the largest size accepted, or None for any.

    Returns:
        The file's ``os.stat`` result.

    Raises:
        EdgesmithError: when it is missing, a FIFO, a device, a directory, or too large.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise EdgesmithError(f"{what} not found: {short(Path(path))}") from None
    except (OSError, ValueError) as exc:
        raise EdgesmithError(
            f"{what} {short(Path(path))} cannot be read ({type(exc).__name__}: {exc.args[-1]})"
        ) from None
    _check_stat(info, path, what, max_bytes)
    return info


def _check_stat(info: os.stat_result, path: str | Path, what: str, max_bytes: int | None) -> None:
    kind = _kind(info.st_mode)
    if kind is not None:
        raise EdgesmithError(
            f"{what} {short(Path(path))} is {kind}, not a regular file; refusing to read it"
        )
    if max_bytes is not None and info.st_size > max_bytes:
        raise EdgesmithError(
            f"{what} {short(Path(path))} is {human_bytes(info.st_size)}; at most "
            f"{human_bytes(max_bytes)} is read"
        )


def open_regular_file(path: str | Path, what: str, max_bytes: int | None = None) -> IO[bytes]:
    """Open a regular file for reading in binary mode, checking what was opened (no race).

    The file is opened without blocking (a FIFO would wait for a writer) and checked with
    ``fstat`` on the opened descriptor, so a file swapped for a FIFO after a ``stat`` is
    refused too.

    Raises:
        EdgesmithError: as :func:`check_regular_file`.
    """
    check_regular_file(path, what, max_bytes)  # the usual "not found" / "is a FIFO" message
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise EdgesmithError(
            f"{what} {short(Path(path))} cannot be opened ({exc.strerror or exc})"
        ) from None
    try:
        _check_stat(os.fstat(fd), path, what, max_bytes)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded_bytes(path: str | Path, what: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (a file that grows is refused too).

    Raises:
        EdgesmithError: as :func:`check_regular_file`.
    """
    with open_regular_file(path, what, max_bytes) as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise EdgesmithError(
            f"{what} {short(Path(path))} is larger than {human_bytes(max_bytes)}; refusing it"
        )
    return data


def available_memory_bytes() -> int | None:
    """Memory this process may still take, in bytes; None when unknown.

    ``MemAvailable`` from ``/proc/meminfo`` (else the free pages ``sysconf`` reports), capped
    by what is left of a cgroup v2 limit. None means no allocation is refused for memory.
    """
    figures = []
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    figures.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    if not figures:
        try:
            figures.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            pass
    try:  # a container's limit (cgroup v2): what is left of it
        root = Path("/sys/fs/cgroup")
        limit = (root / "memory.max").read_text().strip()
        if limit.isdigit():
            figures.append(int(limit) - int((root / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        pass
    return max(0, min(figures)) if figures else None


def require_memory(nbytes: int, what: str) -> None:
    """Refuse to allocate ``nbytes`` for ``what`` when more than the memory available.

    Raises:
        EdgesmithError: ``"<what>: <size> needed, more than the <size> of memory available"``.
    """
    available = available_memory_bytes()
    if available is not None and nbytes > available:
        raise EdgesmithError(
            f"{what}: {human_bytes(nbytes)} needed, more than the {human_bytes(available)} of "
            "memory available"
        )


class _AliasRefused(Exception):
    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


def _refuse_aliases(yaml: Any, text: str, loader: type) -> None:
    """Raise :class:`_AliasRefused` at the first anchor or alias of the event stream.

    The events are read before any node is composed, so an alias bomb is never expanded.
    """
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _AliasRefused(event.start_mark.line + 1)


def load_yaml_text(text: str, where: str) -> Any:
    """Parse YAML with the safe loader, refusing anchors and aliases; errors on one line.

    libyaml's loader is used where PyYAML has it (fast, and it bounds the nesting depth).

    Raises:
        EdgesmithError: for a syntax error or an anchor/alias (line number given).
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    try:
        _refuse_aliases(yaml, text, loader)
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except _AliasRefused as exc:
        raise EdgesmithError(
            f"{where}: YAML anchors and aliases (&name, *name) are not accepted (line {exc.line}); "
            "write the values out"
        ) from None
    except RecursionError:
        raise EdgesmithError(f"{where}: YAML nested too deeply") from None
    except yaml.MarkedYAMLError as exc:  # the line and the problem; no snippet of the file
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = f" ({exc.context})" if exc.context else ""
        raise EdgesmithError(
            one_line(f"cannot parse {where}: {at}{exc.problem}{context}")
        ) from None
    except Exception as exc:  # YAMLError, a bad timestamp's ValueError, ...: all "unparsable"
        raise EdgesmithError(
            one_line(f"cannot parse {where}: {type(exc).__name__}: {exc}")
        ) from None
