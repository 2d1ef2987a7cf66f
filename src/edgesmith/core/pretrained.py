"""The pretrained files that ship inside the package: trained on a GPU once, usable without one.

``edgesmith/pretrained/index.json`` lists each entry: what it is, how it was made (recipe, run,
seed, epochs, machine, wall time), what it measured, and its artifacts, each a folder of the
package holding an ordinary artifact (``keras``: the train artifact; ``tflite-int8``: its export)
with the sha256 of every file. :func:`get` copies one out as a normal artifact folder, checked
against those hashes, so that every stage (``compress``, ``export``, ``build``, ``check``,
``train --model zoo:NAME``) starts from it as from one of its own.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from pathlib import Path
from typing import Any

from edgesmith.core.artifacts import Artifact, ArtifactWriter, read_artifact
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.outputs import sha256_file

FOLDER = Path(__file__).resolve().parent.parent / "pretrained"
PREFIX = "zoo:"
"""``--model zoo:NAME``: the entry's Keras file, to fine-tune."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One shipped model: its artifacts (format -> folder and file hashes) and its record."""

    name: str
    description: str
    artifacts: dict[str, dict[str, Any]]
    made: dict[str, Any]
    measured: dict[str, Any]

    def folder(self, fmt: str) -> Path:
        """The package folder of the ``fmt`` artifact (``keras`` or ``tflite-int8``).

        Raises:
            EdgesmithError: for a format this entry does not ship.
        """
        if fmt not in self.artifacts:
            raise EdgesmithError(
                f"{self.name} ships no {fmt!r} artifact; expected one of "
                f"{', '.join(self.artifacts)}"
            )
        return FOLDER / self.artifacts[fmt]["folder"]

    @functools.cached_property
    def _keras(self) -> Artifact:
        """The Keras artifact as shipped (its files are hash-checked where they are copied)."""
        return read_artifact(self.folder("keras"), verify=False)

    def normalization(self) -> str:
        """The ``--normalization`` text of the Keras model's input (``unit`` for the shipped)."""
        return self._keras.manifest.input.normalization.name

    def artifact_id(self) -> str:
        """The Keras artifact's id: the parent of a model fine-tuned from this entry."""
        return self._keras.manifest.id

    def keras_file(self) -> Path:
        """The entry's Keras model file (checked), e.g. to fine-tune from."""
        _check_files(self, "keras")
        return self._keras.model_path


@functools.cache
def entries() -> dict[str, Entry]:
    """Every shipped entry by name, from ``index.json``."""
    document = json.loads((FOLDER / "index.json").read_text(encoding="utf-8"))
    return {
        item["name"]: Entry(
            name=item["name"],
            description=item["description"],
            artifacts=item["artifacts"],
            made=item["made"],
            measured=item["measured"],
        )
        for item in document["entries"]
    }


def find(name: str) -> Entry:
    """The entry called ``name`` (``zoo:`` prefix allowed).

    Raises:
        EdgesmithError: for an unknown name, listing the shipped ones.
    """
    bare = name.removeprefix(PREFIX)
    found = entries().get(bare)
    if found is None:
        raise EdgesmithError(
            f"no pretrained model {bare!r}: expected one of {', '.join(entries())} "
            "(edgesmith zoo list)"
        )
    return found


def _check_files(entry: Entry, fmt: str) -> None:
    """Refuse a shipped file whose sha256 is not the one ``index.json`` records."""
    folder = entry.folder(fmt)
    for name, expected in entry.artifacts[fmt]["sha256"].items():
        path = folder / name
        if not path.is_file() or sha256_file(path) != expected:
            raise EdgesmithError(
                f"the installed pretrained file {path} is missing or changed (sha256 differs "
                "from index.json); reinstall edgesmith"
            )


def get(name: str, out: str | Path, fmt: str = "keras") -> Artifact:
    """Write entry ``name``'s ``fmt`` artifact to ``out`` (a new folder), checked, and open it.

    Raises:
        EdgesmithError: for an unknown name or format, a changed shipped file, or an ``out``
            that already holds something.
    """
    entry = find(name)
    folder = entry.folder(fmt)
    _check_files(entry, fmt)
    with ArtifactWriter(out) as writer:
        for file in entry.artifacts[fmt]["sha256"]:
            if file == "manifest.json":
                continue
            target = writer.dir / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / file, target)
        document = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        writer.publish(document)
    return read_artifact(out)


def is_zoo_model(text: str) -> bool:
    """Whether a ``--model`` value names a pretrained entry (``zoo:NAME``)."""
    return text.startswith(PREFIX)
