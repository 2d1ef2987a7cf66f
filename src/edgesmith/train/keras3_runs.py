"""Run recipes: several Keras 3 trainings in order, later runs distilling from earlier ones.

A run recipe (e.g. ``src/edgesmith/recipes/train/cifar10-best.yaml``) is YAML with shared
``defaults`` and a list of ``runs``, each a ``name`` plus ``TrainConfig`` fields::

    defaults: {data: cifar10, backend: jax, batch_size: 512}
    runs:
      - {name: teacher, model: resnet20, epochs: 200}
      - {name: student-s0, model: resnet8, teacher: "@teacher", ema: 0.999, seed: 0}

``teacher: "@NAME"`` names the artifact an earlier run of the same recipe wrote. Each run writes
``<out>/<name>`` and resumes its own ``.partial`` folder when interrupted, so re-running the same
command after a stop continues where it was and skips the runs already finished.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgesmith.core.artifacts import Artifact, read_artifact
from edgesmith.core.config import load_config_file
from edgesmith.core.errors import EdgesmithError
from edgesmith.train.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One training of a recipe: its name, settings and the run it distils from (if any)."""

    name: str
    settings: dict[str, Any]
    teacher_run: str | None


def load_run_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> list[PlannedRun]:
    """Read and validate a run recipe; ``overrides`` replace fields of every run.

    Raises:
        EdgesmithError: for a malformed file, duplicate or missing names, a ``@teacher`` that
            names no earlier run, or settings ``TrainConfig`` refuses.
    """
    recipe = _read_recipe(Path(path))
    runs = recipe.get("runs")
    if not isinstance(runs, list) or not runs:
        raise EdgesmithError(f"{path}: expected a non-empty list 'runs' of training runs")
    defaults = recipe.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise EdgesmithError(f"{path}: 'defaults' must be a mapping of TrainConfig fields")
    planned: list[PlannedRun] = []
    for index, entry in enumerate(runs):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise EdgesmithError(f"{path}: run {index + 1} needs a 'name' and TrainConfig fields")
        settings = {**defaults, **{k: v for k, v in entry.items() if k != "name"}}
        settings.update(overrides or {})
        name = entry["name"]
        if any(p.name == name for p in planned):
            raise EdgesmithError(f"{path}: run name {name!r} is used twice")
        teacher_run = None
        teacher = settings.get("teacher")
        if isinstance(teacher, str) and teacher.startswith("@"):
            teacher_run = teacher[1:]
            if not any(p.name == teacher_run for p in planned):
                raise EdgesmithError(
                    f"{path}: run {name!r} distils from {teacher!r}, which is no earlier run"
                )
            settings["teacher"] = f"@{teacher_run}"  # validated as text; resolved when run
        TrainConfig.from_dict(settings)
        planned.append(PlannedRun(name, settings, teacher_run))
    return planned


def _read_recipe(path: Path) -> dict[str, Any]:
    """YAML via PyYAML; without it (a bare GPU machine), the JSON subset of YAML.

    Shipped run recipes are written as JSON with ``#`` comment lines, which is valid YAML, so
    they load on machines where only numpy and Keras 3 are installed.
    """
    if importlib.util.find_spec("yaml") is not None:
        return load_config_file(path)
    if not path.is_file():
        raise EdgesmithError(f"config file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise EdgesmithError(
            f"cannot parse {path} without PyYAML (only JSON with # comment lines): {exc}"
        ) from None
    if not isinstance(values, dict):
        raise EdgesmithError(f"config file {path} must hold a mapping of settings at the top")
    return values


def select_runs(planned: list[PlannedRun], names: str | list[str]) -> list[PlannedRun]:
    """The runs named (``"a,b"`` or a list) and the teachers they distil from, in recipe order.

    Raises:
        EdgesmithError: naming the runs the recipe does not have.
    """
    items = names.split(",") if isinstance(names, str) else names
    wanted = {name.strip() for name in items if name.strip()}
    if not wanted:
        raise EdgesmithError(
            "no run named: give one or more of " + ", ".join(p.name for p in planned)
        )
    unknown = wanted - {p.name for p in planned}
    if unknown:
        raise EdgesmithError(
            f"no run named {', '.join(sorted(unknown))}: the recipe has "
            f"{', '.join(p.name for p in planned)}"
        )
    for run in reversed(planned):  # teachers come first, so one backward pass finds them all
        if run.name in wanted and run.teacher_run:
            wanted.add(run.teacher_run)
    return [p for p in planned if p.name in wanted]


def run_recipe(
    planned: list[PlannedRun],
    out: str | Path,
    train: Callable[..., Artifact],
    *,
    on_done: Callable[[PlannedRun, Artifact], None] | None = None,
) -> dict[str, Artifact]:
    """Train every run into ``out/<name>``; finished runs are read back, not trained again.

    Args:
        planned: the runs, from :func:`load_run_recipe`.
        out: the folder that receives one artifact folder per run.
        train: the trainer, ``train(config, out, resume=...)`` (``train_keras3``).
        on_done: called after each run with its artifact.

    Returns:
        The artifacts by run name.
    """
    out = Path(out)
    done: dict[str, Artifact] = {}
    for run in planned:
        target = out / run.name
        settings = dict(run.settings)
        if run.teacher_run is not None:
            settings["teacher"] = str(done[run.teacher_run].path)
        if (target / "manifest.json").is_file():
            artifact = read_artifact(target)
            _check_same_run(artifact, TrainConfig.from_dict(settings), target)
        else:
            partial = target.with_name(target.name + ".partial")
            artifact = train(TrainConfig.from_dict(settings), target, resume=partial.is_dir())
        done[run.name] = artifact
        if on_done is not None:
            on_done(run, artifact)
    return done


IDENTITY = ("model", "widths", "epochs", "seed")
"""What a finished run read back must share with the recipe's run: the rest (data path,
backend, batch) may differ for a run trained elsewhere, e.g. a teacher trained on a GPU."""


def _check_same_run(artifact: Artifact, planned: TrainConfig, target: Path) -> None:
    """Refuse a finished run whose model, widths, epochs or seed differ from the recipe's."""
    config = artifact.manifest.config
    for key in IDENTITY:
        if key in config and config[key] != getattr(planned, key):
            raise EdgesmithError(
                f"{target} holds a finished run with {key} {config[key]!r}, but the recipe asks "
                f"for {getattr(planned, key)!r}: use another output folder"
            )
