"""Configs as frozen dataclasses: validated up front, round-tripped through plain dicts and files.

A typo in a recipe must fail before minutes of training, not after, so ``from_dict`` rejects
unknown keys by name and every config validates itself in ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from edgesmith.core.errors import EdgesmithError

C = TypeVar("C", bound="Config")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every ``<Thing>Config``: ``to_dict``/``from_dict`` that refuse unknown keys.

    Fields declared with :func:`setting` are checked against their type, choices and range on
    construction; a subclass's ``__post_init__`` calls ``super().__post_init__()`` and then checks
    what involves several fields.
    """

    def __post_init__(self) -> None:
        self.check_settings()

    def check_settings(self) -> None:
        """Refuse a field outside its :class:`Setting`; store tuples for list values.

        Raises:
            EdgesmithError: naming the field, what it accepts and the value received.
        """
        for name, (_, rule, hint) in settings_of(type(self)).items():
            value = getattr(self, name)
            base, optional = value_kind(hint)
            if value is None and optional:
                continue
            checked = check_value(name, value, rule, base)
            if checked is not value:
                object.__setattr__(self, name, checked)

    def to_dict(self) -> dict[str, Any]:
        """Return every field, defaults included, as JSON-ready values."""
        return {f.name: json_ready(getattr(self, f.name)) for f in dataclasses.fields(self)}

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
        """Return a copy with some fields changed (validated again).

        Raises:
            EdgesmithError: for a name that is not a field, or a value the config refuses.
        """
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise EdgesmithError(
                f"unknown {type(self).__name__} setting(s): {', '.join(unknown)}. "
                f"Valid: {', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, **changes)


def json_ready(value: Any) -> Any:
    """A frozen record's value as JSON data, copied so that the record's own data stays as is.

    Records (anything with ``to_dict``) become objects, tuples lists, mappings fresh mappings.
    """
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML config file (a regular file of at most 1 MiB) into a dict.

    YAML is read with the safe loader and may not use anchors or aliases: a few hundred bytes
    of nested aliases expand to millions of values.

    Raises:
        EdgesmithError: if the file is missing, not a regular file (a FIFO, a device), too
            large, unparsable, uses YAML aliases, or is not a mapping (one short line each).
    """
    from edgesmith.core.safe_files import (
        MAX_CONFIG_BYTES,
        load_yaml_text,
        one_line,
        read_bounded_bytes,
        short,
    )

    path = Path(path)
    data = read_bounded_bytes(path, "config file", MAX_CONFIG_BYTES)
    where = f"config file {short(path)}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EdgesmithError(f"{where} is not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() == ".json":
        try:
            values = json.loads(text)
        except (ValueError, RecursionError) as exc:  # the message carries the line number
            raise EdgesmithError(one_line(f"cannot parse {where}: {exc}")) from None
    else:
        values = load_yaml_text(text, where)
    if not isinstance(values, dict):
        raise EdgesmithError(f"{where} must hold a mapping of settings at the top")
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


@dataclasses.dataclass(frozen=True)
class Setting:
    """What one config field is on the command line and which values it accepts.

    The config field is the one source of a setting: its default is the dataclass default, and
    this record holds its help, flag and range, so the CLI, recipes and the API cannot drift
    apart. :func:`edgesmith.core.cli_args.add_settings` builds the flags from it and
    :meth:`Config.check_settings` refuses values outside it.

    Attributes:
        help: one line for ``--help`` (the default is appended unless the text names it).
        flag: the option string; None: ``--`` and the field name with dashes; ``""``: the
            field is not on the command line (recipes and the API only).
        metavar: the placeholder shown in ``--help``.
        choices: the only values accepted (strings).
        low: the least value (numbers; for a tuple of numbers, each item).
        high: the greatest value (or the bound just above it with ``high_open``).
        high_open: ``high`` itself is refused.
        negate: a boolean field whose flag turns it off (``--no-xnnpack`` sets False).
        repeat: a tuple field whose flag is given once per item (``--ssh-option A
            --ssh-option B``), for items that may hold commas themselves.
    """

    help: str
    flag: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    negate: bool = False
    repeat: bool = False


def setting(default: Any = dataclasses.MISSING, help: str = "", **options: Any) -> Any:
    """A config field with its CLI flag, help and range (see :class:`Setting`).

    ``default`` may be a zero-argument callable marked by ``factory=True`` in ``options`` (a
    nested config). A field without a default is required.
    """
    factory = options.pop("factory", False)
    meta = {"setting": Setting(help, **options)}
    if factory:
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def settings_of(cls: type) -> dict[str, tuple[dataclasses.Field, Setting, Any]]:
    """``name -> (field, Setting, type)`` of each field of ``cls`` declared with :func:`setting`."""
    hints = _hints(cls)
    return {
        f.name: (f, f.metadata["setting"], hints[f.name])
        for f in dataclasses.fields(cls)
        if "setting" in f.metadata
    }


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def value_kind(hint: Any) -> tuple[Any, bool]:
    """``(base type, optional)``: ``float | None`` gives ``(float, True)``."""
    args = typing.get_args(hint)
    if type(hint) is types.UnionType or typing.get_origin(hint) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else hint), type(None) in args
    return hint, False


def _item_type(base: Any) -> Any:
    """``tuple[float, ...]`` -> ``float``; anything else -> None."""
    if typing.get_origin(base) is tuple:
        return typing.get_args(base)[0]
    return None


def check_value(name: str, value: Any, rule: Setting, base: Any) -> Any:
    """Refuse ``value`` unless it fits its field's type, choices and range; return it normalised.

    A comma-separated string is accepted for a tuple field (``"a,b"`` -> ``("a", "b")``), so that
    recipes, config files and flags take the same text.

    Raises:
        EdgesmithError: one line naming the setting, what was expected and the value received.
    """
    item = _item_type(base)
    if item is not None:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise EdgesmithError(f"{name} must be a list. Received: {value!r}")
        if item is str:
            items = [v.strip() if isinstance(v, str) else v for v in items]
            items = [v for v in items if v != ""]
            if not all(isinstance(v, str) for v in items):
                raise EdgesmithError(f"{name} must be a list of names. Received: {value!r}")
        elif item in (int, float):
            items = [_number(name, v, item) for v in items]
        for v in items:
            _check_scalar(name, v, rule, item)
        return tuple(items)
    if base is bool:
        if not isinstance(value, bool):
            raise EdgesmithError(f"{name} must be true or false. Received: {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            least = "" if rule.low is None else f" >= {rule.low:g}"
            raise EdgesmithError(f"{name} must be a whole number{least}. Received: {value!r}")
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise EdgesmithError(f"{name} must be a number. Received: {value!r}")
    elif base is str and not isinstance(value, str):
        raise EdgesmithError(f"{name} must be a string. Received: {value!r}")
    _check_scalar(name, value, rule, base)
    return value


def _number(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        what = "whole numbers" if kind is int else "numbers"
        raise EdgesmithError(f"{name} must be {what} separated by commas. Received: {value!r}")
    return value


def _check_scalar(name: str, value: Any, rule: Setting, base: Any) -> None:
    if rule.choices is not None and value not in rule.choices:
        raise EdgesmithError(
            f"{name} must be one of {', '.join(rule.choices)}. Received: {value!r}"
        )
    if rule.low is None and rule.high is None:
        return
    if rule.high is None:  # a floor only: whole numbers, or finite numbers
        if not rule.low <= value < math.inf:
            what = "a whole number" if base is int else "a number"
            raise EdgesmithError(f"{name} must be {what} >= {rule.low:g}. Received: {value!r}")
        return
    low = -math.inf if rule.low is None else rule.low
    high = math.inf if rule.high is None else rule.high
    check_range(name, value, low, high, high_open=rule.high_open)
