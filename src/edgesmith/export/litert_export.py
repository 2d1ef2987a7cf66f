"""Export's LiteRT Quantizer formats: which recipe, checked when, built how, recorded as what.

Every LiteRT Quantizer format starts from the float32 .tflite export makes (``tflite-fp32``,
converted once per run and shared), applies its recipe (``export/litert_recipes.py``) with
export's own calibration images, and hands the file back to the exporter, which embeds the
metadata and puts it through the same target and parity checks as every other file. What the
quantizer was asked and what its ``validate()`` saw go into the manifest's ``quantizer``
record.

:func:`check_request` runs before any model is loaded (no TensorFlow, no quantizer import
beyond loading a recipe), so a missing package, a missing or bad recipe, or a sensitivity file
from another model costs milliseconds and leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

from edgesmith.core.errors import EdgesmithError
from edgesmith.export.formats import ExportFormat
from edgesmith.export.litert_recipes import (
    RecipeSpec,
    builtin_recipe,
    check_scopes,
    read_recipe_file,
)
from edgesmith.export.options import ExportOptions

BACKEND = "litert"
RECIPE_FORMAT = "tflite-recipe"
FLOAT_KEY = "tflite-fp32:dense"  # the plan's cached float file that every recipe starts from


CHECKED_RECIPE = "quantizer-recipe:checked"
"""The plan cache key of the ``--quantizer-recipe`` that :func:`check_request` read and checked."""


def record_key(format_name: str) -> str:
    """The plan cache key under which a built format leaves its manifest record."""
    return f"quantizer:{format_name}"


def check_request(
    chosen: list[ExportFormat], options: ExportOptions, source_id: str
) -> RecipeSpec | None:
    """Refuse what the LiteRT Quantizer formats cannot do, before any work.

    Returns:
        The ``--quantizer-recipe`` file as read and checked here, which ``tflite-recipe``
        builds with (:data:`CHECKED_RECIPE` in the plan's cache), so the file is read once and
        the recipe quantised is the one validated; None without that format.

    Raises:
        EdgesmithError: ai-edge-quantizer is not installed (one line naming the extra);
            ``tflite-recipe`` without ``--quantizer-recipe`` or the reverse; a recipe file that
            cannot be read, is not a recipe, was measured on another model, or that the
            quantizer refuses.
    """
    from edgesmith.export import litert_quantizer

    names = [f.name for f in chosen]
    if options.quantizer_recipe is not None and RECIPE_FORMAT not in names:
        raise EdgesmithError(
            f"--quantizer-recipe applies to --format {RECIPE_FORMAT}; it is not among "
            f"{', '.join(names)}"
        )
    if not any(f.quantizer == BACKEND for f in chosen):
        return None
    litert_quantizer.require()
    if RECIPE_FORMAT not in names:
        return None
    if options.quantizer_recipe is None:
        raise EdgesmithError(
            f"--format {RECIPE_FORMAT} needs --quantizer-recipe FILE (a LiteRT Quantizer "
            "recipe, or the JSON compress sensitivity writes)"
        )
    spec = read_recipe_file(options.quantizer_recipe, source_id)
    litert_quantizer.check_recipe(spec.recipe, f"--quantizer-recipe {spec.source}")
    return spec


def recipe_for(format_name: str, plan: Any) -> RecipeSpec:
    """The recipe of a format: built in, or the checked ``--quantizer-recipe`` for its format."""
    if format_name == RECIPE_FORMAT:
        checked = plan.cache.get(CHECKED_RECIPE)
        if checked is None:
            raise EdgesmithError(f"--format {RECIPE_FORMAT} needs --quantizer-recipe FILE")
        return checked
    return builtin_recipe(format_name)


def build(plan, format_name: str) -> bytes:
    """Quantise the run's float32 .tflite with the format's recipe; leave its record in the plan.

    Args:
        plan: the exporter's :class:`~edgesmith.export.builders.Plan`.
        format_name: a LiteRT Quantizer format.

    Returns:
        The quantised file's bytes (the exporter embeds the metadata).

    Raises:
        EdgesmithError: when a recipe rule matches no op of the model, or the quantizer fails.
    """
    from edgesmith.export import litert_quantizer, tflite
    from edgesmith.export.ops import tflite_op_report

    spec = recipe_for(format_name, plan)
    float_model = plan.cached(FLOAT_KEY, lambda: tflite.convert(plan.model, "fp32"))
    where = f"--quantizer-recipe {spec.source}" if spec.source != "builtin" else format_name
    check_scopes(spec.recipe, tflite_op_report(float_model), where)
    quantized = litert_quantizer.quantize(
        float_model,
        spec.recipe,
        plan.calibration,
        calibration_rule=plan.options.quantizer_calibration,
        where=format_name,
    )
    plan.cache[record_key(format_name)] = manifest_record(spec, quantized)
    return quantized.model


def manifest_record(spec: RecipeSpec, quantized) -> dict[str, Any]:
    """The manifest's ``quantizer`` record (``edgesmith.core.manifest.Quantizer``)."""
    from edgesmith.export import litert_quantizer

    record: dict[str, Any] = {
        "backend": BACKEND,
        "package": f"{litert_quantizer.PACKAGE} {litert_quantizer.version()}",
        "recipe_name": spec.name,
        "recipe_source": spec.source,
        "recipe_sha256": spec.sha256,
        "recipe": spec.recipe,
        "promoted": list(spec.promoted) or None,
        "calibration_samples": quantized.calibration_samples,
        "calibration_rule": quantized.calibration_rule,
        "validation": quantized.validation or None,
    }
    return {k: v for k, v in record.items() if v is not None}
