"""Configs as frozen dataclasses: validated up front, round-tripped through plain dicts and files.

A typo in a recipe must fail before minutes of training, not after, so ``from_dict`` rejects
unknown keys by name and every config validates itself in ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from edgesmith.core.errors import EdgesmithError

C = TypeVar("C", bound="Config")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every ``<Thing>Config``: ``to_dict``/``from_dict`` that refuse unknown keys."""

    def to_dict(self) -> dict[str, Any]:
        """Return every field, defaults included, as JSON-ready values."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        """Build a config from a dict, naming any key that is not a field.

        Raises:
            EdgesmithError: for an unknown key or a value the config rejects.
        """
        if not isinstance(values, dict):
            raise EdgesmithError(
                f"{cls.__name__} expects a mapping of settings. Received: {type(values).__name__}"
            )
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(key) for key in set(values) - set(known))  # YAML keys may be ints
        if unknown:
            raise EdgesmithError(
                f"unknown {cls.__name__} key(s): {', '.join(unknown)}. "
                f"Valid keys: {', '.join(known)}"
            )
        try:
            return cls(**values)
        except TypeError as exc:  # a required field is missing
            raise EdgesmithError(f"{cls.__name__}: {exc}") from None

    def replace(self: C, **changes: Any) -> C:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, dict):  # a copy: the frozen config's own dict stays unchanged
        return {k: _plain(v) for k, v in value.items()}
    return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML config file into a dict.

    Raises:
        EdgesmithError: if the file is missing, unreadable, or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgesmithError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as exc:  # json/yaml parse errors carry line numbers worth showing
        raise EdgesmithError(f"cannot parse config file {path}: {exc}") from None
    if not isinstance(values, dict):
        raise EdgesmithError(f"config file {path} must hold a mapping of settings at the top")
    return values


def check_range(name: str, value: Any, low: float, high: float, *, high_open: bool = False) -> None:
    """Raise a one-line error unless ``low <= value <= high`` (or ``< high`` when open).

    Raises:
        EdgesmithError: naming the setting, the expected interval and the received value.
    """
    bad_type = isinstance(value, bool) or not isinstance(value, (int, float))
    inside = not bad_type and low <= value and (value < high if high_open else value <= high)
    if not inside:
        bracket = ")" if high_open else "]"
        raise EdgesmithError(f"{name} must be in [{low}, {high}{bracket}. Received: {value!r}")


def check_positive_int(name: str, value: Any) -> None:
    """Raise a one-line error unless ``value`` is an int >= 1.

    Raises:
        EdgesmithError: naming the setting and the received value.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EdgesmithError(f"{name} must be a whole number >= 1. Received: {value!r}")
