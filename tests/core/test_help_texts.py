"""Every command's texts come from its help file, and every example in them parses."""

import argparse
import re
import shlex
from pathlib import Path

import pytest

from edgesmith.app.cli import build_parser
from edgesmith.core.help_texts import read_help

SRC = Path(__file__).resolve().parents[2] / "src" / "edgesmith"
HELP_FILES = sorted(SRC.rglob("help/*.txt"))


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _commands(sub, (*prefix, name))


def _examples(text: str) -> list[str]:
    """The indented ``edgesmith ...`` command lines of a help text, continuation lines joined."""
    commands, pending = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if pending is not None:
            line = f"{pending} {line}"
        elif not re.match(r"^\s{2,}(\S+=\S+\s+)*edgesmith [a-z]", raw):
            continue
        pending = line[:-1].rstrip() if line.endswith("\\") else None
        if pending is None:
            commands.append(line)
    return commands


def _argv(line: str) -> list[str]:
    line = re.sub(r"\s{2,}\(.*$", "", line)  # a trailing "(what it does)" remark
    line = re.split(r"\s+#\s|\s\|\s|\s&&\s", line)[0]  # a comment, a pipe, a second command
    words = shlex.split(line)
    return words[words.index("edgesmith") + 1 :]


def test_every_help_file_has_a_summary_a_description_and_examples():
    assert len(HELP_FILES) >= 18
    for path in HELP_FILES:
        package = ".".join(path.parent.parent.relative_to(SRC.parent).parts)
        texts = read_help(package, path.stem)
        assert texts.description and "examples:" in texts.epilog, path
        assert texts.summary or path.stem == "edgesmith", path
        assert (
            "$data_specs" not in texts.epilog
            and "$formats" not in texts.epilog
            or (path.stem == "export")
        )


def test_every_command_shows_its_help_file():
    parser = build_parser()
    commands = dict(_commands(parser))
    assert {("bench",), ("compress", "prune"), ("device", "setup"), ("build",)} <= set(commands)
    for words, sub in commands.items():
        assert sub.description and sub.epilog and "examples:" in sub.epilog, words


@pytest.mark.parametrize("path", HELP_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_every_example_in_a_help_file_parses(path):
    package = ".".join(path.parent.parent.relative_to(SRC.parent).parts)
    examples = _examples(read_help(package, path.stem).epilog)
    if path.stem not in ("compress", "device"):
        assert examples, f"{path} shows no example"
    parser = build_parser()
    for line in examples:
        argv = _argv(line)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # Parser.error printed the reason on stderr
            pytest.fail(f"{path.name}: example does not parse ({exc.code}): {line}")
        assert callable(args.handler), line


def test_a_broken_example_is_caught():
    with pytest.raises(SystemExit):
        build_parser().parse_args(_argv("edgesmith bench model.tflite --threads many"))
    assert _examples(
        "prose edgesmith bench\n  edgesmith bench a.tflite \\\n   --data digits   (x)\n"
    ) == ["edgesmith bench a.tflite --data digits   (x)"]


def test_help_files_are_packaged():
    pyproject = (SRC.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    for folder in {path.parent for path in HELP_FILES}:
        package = ".".join(folder.parent.relative_to(SRC.parent).parts)
        assert f'"{package}" = ["help/*.txt"]' in pyproject, package
