"""Recipes: techniques chained in one command, each step leaving its own artifact.

A recipe is a YAML or JSON file::

    steps:
      - distill: {student: resnet8, epochs: 30}
      - prune: {sparsity: 0.5, structure: channels, epochs: 6}
      - qat: {epochs: 2}

Each step is a registry key and its config's fields. The whole recipe is validated before
TensorFlow loads (unknown keys, bad values, impossible orders such as pruning after QAT), then
step ``i`` reads step ``i - 1``'s artifact and writes ``OUT/<i>-<key>/``; ``OUT/recipe.json``
lists them. A failed step leaves the finished ones in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgesmith.compress.registry import TECHNIQUES
from edgesmith.core.artifacts import Artifact, check_output_dir
from edgesmith.core.config import Config, load_config_file
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import Reporter, stderr_reporter

SUMMARY = "recipe.json"
# Steps whose result no other technique can start from: a QAT model, a .tflite file.
TERMINAL = ("qat", "quantize")


def parse_recipe(recipe: str | Path | dict) -> list[tuple[str, Config]]:
    """Read and validate a recipe (a file or an already loaded mapping), without TensorFlow.

    Returns:
        ``(key, config)`` per step.

    Raises:
        EdgesmithError: naming the step and what is wrong with it.
    """
    values = recipe if isinstance(recipe, dict) else load_config_file(recipe)
    unknown = sorted(str(key) for key in set(values) - {"steps"})  # YAML keys may be ints
    if unknown:
        raise EdgesmithError(f"recipe: unknown key(s) {', '.join(unknown)}; expected steps")
    steps = values.get("steps")
    if not isinstance(steps, list) or not steps:
        raise EdgesmithError("recipe: steps must be a non-empty list of {technique: settings}")
    parsed = []
    for index, step in enumerate(steps, start=1):
        if not isinstance(step, dict) or len(step) != 1:
            raise EdgesmithError(
                f"recipe step {index}: expected one technique with its settings, such as "
                f"{{prune: {{sparsity: 0.5}}}}. Received: {step!r}"
            )
        ((key, settings),) = step.items()
        if key not in TECHNIQUES:
            raise EdgesmithError(
                f"recipe step {index}: unknown technique {key!r}; expected one of "
                f"{', '.join(TECHNIQUES)}"
            )
        if parsed and parsed[-1][0] in TERMINAL:
            raise EdgesmithError(
                f"recipe step {index} ({key}) follows {parsed[-1][0]}, whose result cannot be "
                "compressed further; put qat/quantize last"
            )
        try:
            config = TECHNIQUES[key].config.from_dict(settings or {})
        except EdgesmithError as exc:
            raise EdgesmithError(f"recipe step {index} ({key}): {exc}") from None
        parsed.append((key, config))
    return parsed


def run_recipe(
    source: str | Path | Artifact,
    recipe: str | Path | dict,
    out: str | Path,
    *,
    report: Reporter | None = None,
) -> list[Artifact]:
    """Run a recipe's steps in order from ``source``; each step's artifact feeds the next.

    Args:
        source: the Keras artifact to start from.
        recipe: a recipe file or mapping (see the module docstring).
        out: a new directory that receives one artifact directory per step.
        report: receives progress lines.

    Returns:
        The artifacts, one per step.

    Raises:
        EdgesmithError: for a bad recipe, source or teacher (before any work), or a step that
            fails.
    """
    from edgesmith.compress.source import read_keras_source

    report = report or stderr_reporter()
    steps = parse_recipe(recipe)
    out = check_output_dir(out, staged=False)  # steps are written in place, not staged
    if not isinstance(source, Artifact):  # every artifact the steps read, before any step runs
        read_keras_source(source, role="--from", allow_qat=False)
    for _, config in steps:
        if getattr(config, "teacher", None):
            read_keras_source(config.teacher, role="--teacher", allow_qat=True)
    out.mkdir(parents=True, exist_ok=True)
    artifacts: list[Artifact] = []
    current: Any = source
    record = {"source": str(source.path if isinstance(source, Artifact) else source), "steps": []}
    for index, (key, config) in enumerate(steps, start=1):
        target = out / f"{index}-{key}"
        report(f"recipe step {index}/{len(steps)}: {key} -> {target}")
        artifact = TECHNIQUES[key].load()(current, config, target, report=report)
        artifacts.append(artifact)
        record["steps"].append(
            {
                "technique": key,
                "config": config.to_dict(),
                "path": target.name if artifact.path == target else str(artifact.path),
                "id": artifact.id,
                "accuracy": artifact.metrics.accuracy,
            }
        )
        (out / SUMMARY).write_text(json.dumps(record, indent=2) + "\n")
        current = artifact.path
    return artifacts
