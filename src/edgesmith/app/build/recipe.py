"""Build recipes: how to train, and which compressed candidates to try for a device.

A build recipe is a YAML or JSON file::

    train: {model: resnet8, epochs: 12}          # edgesmith.train.TrainConfig fields
    candidates:
      - name: dense
        steps: []                                # the trained model as it is
      - name: prune75
        steps:                                   # edgesmith compress recipe steps
          - prune: {sparsity: 0.75, epochs: 3}

Each candidate's steps use the compress stage's own recipe format and validation
(``edgesmith.compress.recipes.parse_recipe``), so one recipe language serves both commands. The
whole file is validated here, in milliseconds, before any TensorFlow import or data load.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from edgesmith.core.config import Config
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.shipped import load_shipped_or_file, shipped_names

DEFAULT_RECIPE = "default"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass(frozen=True)
class CandidateSpec(Config):
    """One candidate: a name and the compress steps that turn the trained model into it.

    Attributes:
        name: a short name (letters, digits, ``_.-``); it names the candidate's directories.
        steps: compress recipe steps, each ``{technique: settings}``; empty keeps the trained
            model as it is.
    """

    name: str
    steps: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise EdgesmithError(
                f"candidate name must be letters, digits, '_', '.' or '-'. Received: {self.name!r}"
            )
        steps = self.steps if self.steps is not None else ()
        if not isinstance(steps, (list, tuple)):
            raise EdgesmithError(
                f"candidate {self.name}: steps must be a list of {{technique: settings}}. "
                f"Received: {steps!r}"
            )
        object.__setattr__(self, "steps", tuple(steps))
        self.parsed()  # validate now, not after training

    def parsed(self) -> list[tuple[str, Config]]:
        """The steps as ``(technique, config)`` pairs, validated by the compress stage.

        Raises:
            EdgesmithError: naming the candidate, the step and what is wrong with it.
        """
        if not self.steps:
            return []
        from edgesmith.compress.recipes import parse_recipe

        try:
            return parse_recipe({"steps": list(self.steps)})
        except EdgesmithError as exc:
            raise EdgesmithError(f"candidate {self.name}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class BuildRecipe(Config):
    """A build: training settings and the candidates to compress, export and measure.

    Attributes:
        train: ``edgesmith.train.TrainConfig`` fields (``data`` normally comes from ``--data``).
        candidates: the candidates, tried in order; names must differ.
    """

    train: dict[str, Any] = dataclasses.field(default_factory=dict)
    candidates: tuple[CandidateSpec, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.train, dict):
            raise EdgesmithError(
                f"recipe train must be a mapping of TrainConfig settings. Received: {self.train!r}"
            )
        from edgesmith.train.config import TrainConfig

        TrainConfig.from_dict(self.train)  # unknown keys and bad values fail here
        if not isinstance(self.candidates, (list, tuple)) or not self.candidates:
            raise EdgesmithError("recipe candidates must be a non-empty list of {name, steps}")
        specs = tuple(
            c if isinstance(c, CandidateSpec) else CandidateSpec.from_dict(c)
            for c in self.candidates
        )
        names = [c.name for c in specs]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise EdgesmithError(
                f"recipe candidate names must differ; repeated: {', '.join(doubled)}"
            )
        object.__setattr__(self, "candidates", specs)

    def train_config(self, **overrides: Any):
        """The recipe's ``TrainConfig`` with the given non-None settings overriding it."""
        from edgesmith.train.config import TrainConfig

        values = {**self.train, **{k: v for k, v in overrides.items() if v is not None}}
        return TrainConfig.from_dict(values)


def shipped_recipes() -> list[str]:
    """Names of the recipes that come with edgesmith."""
    return shipped_names("edgesmith.recipes")


def load_recipe(recipe: str | Path | dict | None = None) -> BuildRecipe:
    """A shipped recipe by name, a recipe file by path, or an already loaded mapping.

    Args:
        recipe: ``None`` for the default recipe, a shipped name, a path or a mapping.

    Raises:
        EdgesmithError: for an unknown name (the shipped ones are listed), an unreadable file,
            an unknown key or technique, or a bad value (named).
    """
    if isinstance(recipe, dict):
        values = recipe
        where = "recipe"
    else:
        text = DEFAULT_RECIPE if recipe is None else str(recipe)
        values = load_shipped_or_file(
            text, "edgesmith.recipes", kind="build recipe", files="recipe YAML/JSON"
        )
        where = f"recipe {text}"
    try:
        return BuildRecipe.from_dict(values)
    except EdgesmithError as exc:
        raise EdgesmithError(f"{where}: {exc}") from None
