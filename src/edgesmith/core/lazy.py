"""Lazy package attributes: public names that load their (TensorFlow-heavy) module on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_getattr(package: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module-level ``__getattr__`` (PEP 562) serving ``names`` from their modules.

    Args:
        package: the package's import name, for the error message.
        names: public name -> the module that defines it.
    """

    def getattr_(name: str) -> object:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return getattr_
