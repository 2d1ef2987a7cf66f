"""LiteRT Quantizer recipes: the built-in ones per export format, recipe files, mixed recipes.

A recipe (ai-edge-quantizer's own JSON) is a list of rules ``{regex, operation, algorithm_key,
op_config}``; each op of the float32 .tflite takes the last rule whose ``regex`` matches its
*scope* (its output tensor names joined by ``;``, with a trailing ``;``) and whose ``operation``
is its op or ``*``. The recipes here are written as plain JSON, exactly as the quantizer's own
``recipe.static_wi8_ai8()``... return them (a test holds them equal), so that building one,
reading a file and checking it against a model need neither the quantizer nor TensorFlow:
``compress sensitivity`` writes its mixed recipe with them, and bad input is refused in
milliseconds.

The mixed recipe is W8A8 everywhere, with the layers that int8 hurts most given 16-bit
activations (W8A16): the one-at-a-time sensitivity (``compress sensitivity``, int8 mode)
measures how much accuracy each conv/dense op wins back when it alone is left float, and the
largest gains, up to what full int8 loses in all, name the layers to promote.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.safe_files import MAX_CONFIG_BYTES, clip, read_bounded_bytes, short

ALGORITHM = "min_max_uniform_quantize"
CATCH_ALL = ".*"
# at most this many layers get 16-bit activations in a mixed recipe: each adds two requantising
# QUANTIZE ops, and the one-at-a-time gains stop adding up beyond the first few
MAX_PROMOTED = 3
RECIPE_KEY = "litert_recipe"  # where a sensitivity document keeps its mixed recipe
RULE_KEYS = ("regex", "operation", "algorithm_key")


def _weights(bits: int, granularity: str = "CHANNELWISE") -> dict[str, Any]:
    return {"num_bits": bits, "symmetric": True, "granularity": granularity, "dtype": "INT"}


def static_rule(activation_bits: int, regex: str = CATCH_ALL, operation: str = "*") -> dict:
    """Static range quantisation: int8 per-channel weights, int8 or int16 activations.

    int8 activations are asymmetric and int16 ones symmetric (LiteRT's kernels), both calibrated
    on representative data: the quantizer's ``static_wi8_ai8`` and ``static_wi8_ai16``.
    """
    return {
        "regex": regex,
        "operation": operation,
        "algorithm_key": ALGORITHM,
        "op_config": {
            "activation_tensor_config": {
                "num_bits": activation_bits,
                "symmetric": activation_bits == 16,
                "granularity": "TENSORWISE",
                "dtype": "INT",
            },
            "weight_tensor_config": _weights(8),
            "compute_precision": "INTEGER",
            "explicit_dequantize": False,
            "skip_checks": False,
            "min_weight_elements": 0,
        },
    }


def dynamic_rule(bits: int, granularity: str = "CHANNELWISE") -> dict:
    """Dynamic range: integer weights, float activations quantised by the kernel at run time."""
    return {
        "regex": CATCH_ALL,
        "operation": "*",
        "algorithm_key": ALGORITHM,
        "op_config": {
            "weight_tensor_config": _weights(bits, granularity),
            "compute_precision": "INTEGER",
            "explicit_dequantize": False,
            "skip_checks": False,
            "min_weight_elements": 0,
        },
    }


def weight_only_rule(bits: int) -> dict:
    """Weight-only: integer weights with a DEQUANTIZE op in front of each float kernel."""
    return {
        "regex": CATCH_ALL,
        "operation": "*",
        "algorithm_key": ALGORITHM,
        "op_config": {
            "weight_tensor_config": _weights(bits),
            "compute_precision": "FLOAT",
            "explicit_dequantize": True,
            "skip_checks": False,
            "min_weight_elements": 0,
        },
    }


# format -> (the quantizer's name for the recipe, the recipe)
BUILTIN: dict[str, tuple[str, list[dict]]] = {
    "tflite-w8a8": ("static_wi8_ai8", [static_rule(8)]),
    "tflite-w8a16": ("static_wi8_ai16", [static_rule(16)]),
    "tflite-w8-dynamic": ("dynamic_wi8_afp32", [dynamic_rule(8)]),
    "tflite-w4-weight-only": ("weight_only_wi4_afp32", [weight_only_rule(4)]),
    "tflite-w4-block32": ("dynamic_wi4b32_afp32", [dynamic_rule(4, "BLOCKWISE_32")]),
}


@dataclasses.dataclass(frozen=True)
class RecipeSpec:
    """A recipe and where it came from, as the manifest records it.

    Attributes:
        recipe: the rules, as the quantizer loads them.
        name: the quantizer's recipe name, ``mixed-w8a8-w8a16`` or ``file``.
        source: ``builtin`` or the recipe file's path.
        sha256: the recipe file's digest (None for a built-in recipe).
        promoted: a mixed recipe's layers given 16-bit activations, with their measured gain.
    """

    recipe: list[dict]
    name: str
    source: str = "builtin"
    sha256: str | None = None
    promoted: tuple[dict, ...] = ()


def builtin_recipe(format_name: str) -> RecipeSpec:
    """The recipe a LiteRT Quantizer format stands for (a fresh copy)."""
    name, recipe = BUILTIN[format_name]
    return RecipeSpec(copy.deepcopy(recipe), name)


def exact_scope(tensor: str) -> str:
    """The regex that matches exactly the op whose (first) output tensor is ``tensor``."""
    return "^" + re.escape(tensor) + ";"


def mixed_recipe(document: dict[str, Any]) -> dict[str, Any]:
    """The mixed W8A8/W8A16 recipe for an ``int8`` sensitivity document.

    Layers are promoted in order of their measured gain (accuracy won back when that layer alone
    stays float), while the gain is positive and the promoted gains have not yet covered the
    whole int8 gap (float minus full int8 on the same images), at most :data:`MAX_PROMOTED`.

    Args:
        document: what :func:`edgesmith.compress.sensitivity.analyse_sensitivity` returns in
            ``int8`` mode (``layers`` with ``tensor``, ``op`` and ``gain_points``).

    Returns:
        ``{"name", "rule", "promoted": [{layer, op, tensor, gain_points}], "recipe": [...]}``.
    """
    same = document.get("float_accuracy_same_images", document.get("float_accuracy"))
    # in the gains' own rounding, so that float noise cannot decide a promotion
    gap = round(100 * (same - document["int8_accuracy"]), 3) if same is not None else None
    promoted: list[dict] = []
    covered = 0.0
    for entry in sorted(document["layers"], key=lambda e: -e["gain_points"]):
        if len(promoted) == MAX_PROMOTED or entry["gain_points"] <= 0:
            break
        if gap is not None and promoted and covered >= gap:
            break
        promoted.append({k: entry[k] for k in ("layer", "op", "tensor", "gain_points")})
        covered = round(covered + entry["gain_points"], 3)
    recipe = [static_rule(8)]
    recipe += [static_rule(16, exact_scope(p["tensor"]), p["op"]) for p in promoted]
    return {
        "name": "mixed-w8a8-w8a16",
        "rule": (
            "W8A8 everywhere; 16-bit activations for the layers whose float fallback won back "
            f"the most accuracy (gain > 0, largest first, until the int8 gap is covered, at most "
            f"{MAX_PROMOTED})"
        ),
        "int8_gap_points": gap,
        "promoted": promoted,
        "recipe": recipe,
    }


def read_recipe_file(path: str | Path, source_id: str | None = None) -> RecipeSpec:
    """Read ``--quantizer-recipe``: a LiteRT Quantizer recipe, or a sensitivity document.

    Args:
        path: a JSON list of rules (the quantizer's own format), or the JSON that ``compress
            sensitivity`` writes (its ``litert_recipe``).
        source_id: the export source's artifact id; a sensitivity document measured on another
            model is refused.

    Raises:
        EdgesmithError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    where = f"--quantizer-recipe {path}"
    raw = read_bounded_bytes(path, "--quantizer-recipe", MAX_CONFIG_BYTES)  # no FIFO, no 1 GB
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # nesting bombs too
        raise EdgesmithError(f"{where}: not JSON ({clip(str(exc), 80)})") from None
    digest = hashlib.sha256(raw).hexdigest()
    if isinstance(document, dict) and RECIPE_KEY in document:
        measured_on = document.get("source_id")
        if source_id is not None and measured_on != source_id:
            raise EdgesmithError(
                f"{where}: its sensitivity was measured on artifact {short(measured_on)}, not on "
                f"the source being exported ({source_id}); run compress sensitivity on this source"
            )
        mixed = document[RECIPE_KEY]
        if not isinstance(mixed, dict) or "recipe" not in mixed:
            raise EdgesmithError(f"{where}: {RECIPE_KEY} must hold a recipe")
        recipe = check_rules(mixed["recipe"], where)
        promoted = mixed.get("promoted") or []
        if not (isinstance(promoted, list) and all(isinstance(p, dict) for p in promoted)):
            raise EdgesmithError(
                f"{where}: {RECIPE_KEY}.promoted must be a list of layer objects. "
                f"Received: {short(promoted)}"
            )
        name = str(mixed.get("name", "mixed"))
        return RecipeSpec(recipe, clip(name, 60), str(path), digest, tuple(promoted))
    if isinstance(document, dict):
        raise EdgesmithError(
            f"{where}: expected a LiteRT Quantizer recipe (a JSON list of rules) or the JSON "
            f"compress sensitivity writes in int8 mode (with {RECIPE_KEY}); this object has "
            f"neither"
        )
    return RecipeSpec(check_rules(document, where), "file", str(path), digest)


def check_rules(recipe: Any, where: str) -> list[dict]:
    """Check a recipe's shape: a non-empty list of rules with the keys and a valid regex.

    The quantizer checks each rule's ``op_config`` itself
    (:func:`edgesmith.export.litert_quantizer.check_recipe`).

    Raises:
        EdgesmithError: naming the rule and what it lacks.
    """
    if not isinstance(recipe, list) or not recipe:
        raise EdgesmithError(f"{where}: a recipe is a non-empty JSON list of rules")
    for index, rule in enumerate(recipe):
        if not isinstance(rule, dict):
            raise EdgesmithError(
                f"{where}: rule {index} must be an object. Received: {short(rule)}"
            )
        missing = [key for key in RULE_KEYS if not isinstance(rule.get(key), str)]
        if missing:
            raise EdgesmithError(
                f"{where}: rule {index} lacks {', '.join(missing)} (each rule has regex, "
                "operation, algorithm_key and op_config)"
            )
        try:
            re.compile(rule["regex"])
        except re.error as exc:
            raise EdgesmithError(
                f"{where}: rule {index}: regex {short(rule['regex'])} is not valid ({exc})"
            ) from None
    return copy.deepcopy(recipe)


def op_scopes(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(op name, scope) of each op of a .tflite op report, as the quantizer matches them."""
    tensors = report["_tensors"]
    scopes = []
    for op in report["_execution"]:
        names = [tensors[i]["name"] for i in op["outputs"]] or [
            tensors[i]["name"] for i in op["inputs"]
        ]
        scopes.append((op["op"], ";".join(names) + (";" if names else "")))
    return scopes


def check_scopes(recipe: list[dict], report: dict[str, Any], where: str) -> None:
    """Refuse a recipe with a rule that matches no op of the float model.

    A rule aimed at a layer that the model does not have (a recipe or a sensitivity file made
    for another model, or for another export of it) would otherwise be skipped in silence, and
    the file quantised as if the rule were not there.

    Raises:
        EdgesmithError: naming the rule, its operation and a few of the model's scopes.
    """
    scopes = op_scopes(report)
    for index, rule in enumerate(recipe):
        if rule["regex"] == CATCH_ALL:
            continue
        pattern = re.compile(rule["regex"])
        wanted = rule["operation"]
        if any(
            pattern.search(scope) and wanted in ("*", op) for op, scope in scopes
        ):  # fmt: skip
            continue
        shown = "; ".join(f"{op} {scope[:60]}" for op, scope in scopes[:3])
        raise EdgesmithError(
            f"{where} does not match the model: rule {index} ({wanted}, regex "
            f"{rule['regex'][:80]!r}) matches none of its {len(scopes)} ops (e.g. {shown})"
        )
