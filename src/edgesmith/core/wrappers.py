"""What objects that wrap another share: attributes read through to it, and closing on exit.

An artifact shows its manifest's values, a loaded model its runner's and its source's; a
timer or a session owns files or a process that ``close`` releases. Stated here once, each such
attribute is one line in the wrapper and each closeable object a ``with`` block.
"""

from __future__ import annotations

import abc
import contextlib
import operator


def forwarded(path: str, doc: str | None = None) -> property:
    """A read-only property whose value is ``self.<path>``.

    Args:
        path: the attribute to read, dotted from the wrapper (``"manifest.dataset.spec"``).
        doc: the property's docstring; None where the class's ``Attributes`` document it.
    """
    return property(operator.attrgetter(path), doc=doc or f"``{path}`` (see the class).")


class Closeable(contextlib.AbstractContextManager):
    """An object a ``with`` block closes on the way out, however the block ends."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the object holds (files, a session, a process)."""

    def __exit__(self, *exc: object) -> None:
        self.close()
