"""What every sub-command's parser shares: its texts, its flags from config fields, its printout.

A command's texts come from its help file (:mod:`edgesmith.core.help_texts`, through
:func:`add_command`). Flags come from config fields (:func:`add_settings`): argparse turns a
refused value into a usage error (exit 2) naming the flag, so a bad number is refused before
any work, in the same words everywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from typing import Any, NoReturn

from edgesmith.core.config import (
    C,
    Setting,
    check_value,
    load_config_file,
    settings_of,
    value_kind,
)
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.help_texts import read_help

TRUST_HELP = (
    "load model files that run code when loaded (Lambda layers, custom classes, SavedModel); "
    "refused by default, see SECURITY.md"
)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line, like every other bad input.

    argparse prints the whole usage block before its message; edgesmith's contract is one line
    naming the value and what was expected (exit 2), with ``--help`` one command away. Every
    sub-command parser inherits this class through ``add_subparsers``.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``edgesmith: error: MESSAGE (see PROG --help)`` and exit 2."""
        print(f"edgesmith: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def formatter(prog: str) -> argparse.HelpFormatter:
    """Keep the examples' line breaks in ``--help`` and align the flags."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def add_command(
    commands: argparse._SubParsersAction,
    name: str,
    package: str,
    handler: Any = None,
    *,
    help_file: str | None = None,
    **fields: str,
) -> argparse.ArgumentParser:
    """A sub-command's parser, its texts from ``<package>/help/<help_file or name>.txt``."""
    texts = read_help(package, help_file or name, **fields)
    parser = commands.add_parser(
        name,
        formatter_class=formatter,
        help=texts.summary,
        description=texts.description,
        epilog=texts.epilog,
    )
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def flag_name(name: str, rule: Setting) -> str:
    """The option string of a config field: its ``flag``, else ``--`` and the name with dashes."""
    return rule.flag or "--" + name.replace("_", "-")


def add_settings(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    skip: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
    defaults: Any = None,
) -> None:
    """Add one flag per :func:`~edgesmith.core.config.setting` field of a config class.

    Each flag stores into the field's name and defaults to None, so a flag left out keeps what a
    ``--config`` file or the config's own default says. Values are checked as they are parsed
    (argparse then names the flag, exit 2) and again by the config.

    Args:
        parser: the parser or argument group to add to.
        cls: the config class.
        skip: fields that stay off this command line.
        required: fields whose flags must be given.
        defaults: an instance whose values ``--help`` shows (default: the class defaults).
    """
    seen = {action.dest for action in getattr(parser, "_actions", [])}
    for name, (field, rule, hint) in settings_of(cls).items():
        if name in skip or name in seen or rule.flag == "":
            continue
        shown = getattr(defaults, name) if defaults is not None else field.default
        base, _ = value_kind(hint)
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": _help(rule, shown, base)}
        if base is bool:
            kwargs.update(action="store_const", const=not rule.negate)
        elif rule.repeat:  # each item as given; the config checks the whole list
            kwargs.update(action="append", metavar=rule.metavar)
        else:
            kwargs.update(type=_parse_as(name, rule, base), metavar=_metavar(rule, base))
        if name in required:
            kwargs["required"] = True
        parser.add_argument(flag_name(name, rule), **kwargs)


def _help(rule: Setting, default: Any, base: Any) -> str:
    text = rule.help
    unset = default is None or default is dataclasses.MISSING or default == () or base is bool
    if unset or "default" in text or isinstance(default, dataclasses.Field):
        return text
    return f"{text} (default: {default})"


def _metavar(rule: Setting, base: Any) -> str | None:
    if rule.metavar:
        return rule.metavar
    if rule.choices:
        return "{" + ",".join(rule.choices) + "}"
    return {int: "N", float: "X"}.get(base)


def _parse_as(name: str, rule: Setting, base: Any):
    """An argparse ``type`` that turns the text into the field's value and checks it."""

    def parse(text: str) -> Any:
        value: Any = text
        if base is int:
            try:
                value = int(text)
            except ValueError:
                least = "" if rule.low is None else f" >= {rule.low:g}"
                raise argparse.ArgumentTypeError(
                    f"expected a whole number{least}. Received: {text!r}"
                ) from None
        elif base is float:
            try:
                value = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected a number. Received: {text!r}") from None
        elif base is not str and typing.get_origin(base) is not tuple:
            return text  # a structured value (a mapping): its config parses the text
        try:
            return check_value(name, value, rule, base)
        except EdgesmithError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def given_settings(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The values of ``cls``'s flags that were given on the command line."""
    return {
        name: getattr(args, name)
        for name in settings_of(cls)
        if getattr(args, name, None) is not None
    }


def config_from_args(cls: type[C], args: argparse.Namespace, **fixed: Any) -> C:
    """Build ``cls`` from ``--config FILE`` (when the command has one), then the flags given.

    Args:
        cls: the config class.
        args: the parsed command line.
        **fixed: values the command sets itself (they win over the file).

    Raises:
        EdgesmithError: for a bad file, an unknown key in it or a value the config refuses.
    """
    values = load_config_file(args.config) if getattr(args, "config", None) else {}
    values.update(fixed)
    values.update(given_settings(args, cls))
    return cls.from_dict(values)


def add_output_flags(
    parser: argparse.ArgumentParser,
    *,
    out: str | None = "new artifact directory",
    out_metavar: str = "DIR",
    config: bool = True,
    json_help: str = "print the written manifest as JSON on stdout",
    json_out: str | None = None,
    overwrite: str | None = None,
    trust: bool = True,
) -> None:
    """The output flags, worded alike on every command: each given text adds its flag.

    ``--out`` (required), ``--config``, ``--json``, ``--json-out FILE``, ``--overwrite``,
    ``--quiet`` and ``--trust-model``.
    """
    if out:
        parser.add_argument("--out", required=True, metavar=out_metavar, help=out)
    if config:
        parser.add_argument(
            "--config", metavar="FILE", help="YAML/JSON file of these settings; flags override it"
        )
    parser.add_argument("--json", action="store_true", help=json_help)
    if json_out:
        parser.add_argument("--json-out", metavar="FILE", help=json_out)
    if overwrite:
        parser.add_argument("--overwrite", action="store_true", help=overwrite)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    if trust:  # the CLI runs the command inside a trust scope when it is given
        parser.add_argument("--trust-model", action="store_true", help=TRUST_HELP)


def print_artifact(args: argparse.Namespace, artifact) -> int:
    """Print a written artifact's path, or its manifest with ``--json``; return exit code 0."""
    if args.json:
        print(json.dumps(artifact.manifest.to_dict(), indent=2))
    else:
        print(artifact.path)
    return 0
