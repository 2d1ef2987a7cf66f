"""Magnitude pruning (tfmot ``prune_low_magnitude``): unstructured to a target sparsity, or 2:4.

The schedule is derived from the fine-tuning length so that the last mask update lands exactly on
the target (tfmot's sparsity is whatever its last update set: with ``frequency=100`` and
``end_step=128`` it stops at 0.742 instead of 0.75). Small layers and the first conv stay dense
by default; the result is stripped of tfmot's wrappers and saved as a plain Keras model, and the
manifest records the sparsity measured from the saved weights, per layer and overall.
A :class:`~edgesmith.compress.config.ChannelPruneConfig` goes to
:mod:`edgesmith.compress.channel_pruning`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgesmith.compress import finetune, measure
from edgesmith.compress.config import ChannelPruneConfig, PruneConfig
from edgesmith.core.artifacts import Artifact, check_output_dir
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import Pruning, PruningSteps
from edgesmith.core.progress import Reporter, stderr_reporter
from edgesmith.tfkeras.backend import keras
from edgesmith.tfkeras.tfmot import tfmot

# Layers whose kernel tfmot prunes (its registry; DepthwiseConv2D is deliberately absent there).
PRUNABLE = ("Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "SeparableConv2D", "Dense")
# 2:4 groups run along input channels of convs and dense layers only.
M_BY_N_LAYERS = ("Conv2D", "Dense")


@dataclasses.dataclass(frozen=True)
class SchedulePlan:
    """When masks update: ``begin_step`` .. ``end_step`` every ``frequency`` steps.

    ``end_step`` is a multiple of ``frequency`` so the final update (at the target) happens.
    """

    begin_step: int
    end_step: int
    frequency: int
    total_steps: int

    def to_dict(self) -> dict:
        """For the manifest."""
        return dataclasses.asdict(self)


def plan_schedule(total_steps: int, pruning_fraction: float, max_frequency: int) -> SchedulePlan:
    """Choose mask-update steps so the last update falls inside training, on the target.

    At least about 10 updates happen during the ramp (fewer for very short runs), and
    ``end_step`` is the last multiple of the frequency within the ramp.
    """
    ramp = max(1, int(total_steps * pruning_fraction))
    frequency = max(1, min(max_frequency, ramp // 10))
    end_step = max(frequency, (ramp // frequency) * frequency)
    return SchedulePlan(0, end_step, frequency, total_steps)


def first_kernel_layer(model: keras.Model) -> str | None:
    """The name of the first conv/dense layer the input meets (it sees raw pixels)."""
    for layer in model.layers:
        if type(layer).__name__ in measure.KERNEL_LAYERS:
            return layer.name
    return None


def select_layers(
    model: keras.Model,
    *,
    kinds: tuple[str, ...],
    skip_layers: tuple[str, ...],
    include_first: bool,
    min_weights: int,
) -> tuple[list[str], dict[str, str]]:
    """Split the model's weighted layers into those to compress and those left alone.

    Returns:
        The names to wrap, and ``{name: reason}`` for every weighted layer left alone.

    Raises:
        EdgesmithError: for a ``skip_layers`` name the model does not have, or a model that is
            not Sequential/functional (tfmot can only clone those).
    """
    check_wrappable(model)
    names = {layer.name for layer in model.layers}
    unknown = [name for name in skip_layers if name not in names]
    if unknown:
        raise EdgesmithError(
            f"skip_layers: the model has no layer {unknown[0]!r}; its layers are "
            f"{', '.join(sorted(names))}"
        )
    first = first_kernel_layer(model)
    chosen, left = [], {}
    for layer in model.layers:
        if not layer.weights:
            continue
        kind = type(layer).__name__
        size = int(getattr(layer, "kernel", layer.weights[0]).shape.num_elements())
        if isinstance(layer, keras.Model):
            left[layer.name] = f"nested model ({kind}): tfmot wraps layers, not models"
        elif kind not in kinds:
            if kind not in ("BatchNormalization", "LayerNormalization"):
                left[layer.name] = f"{kind}: not a layer this technique applies to"
        elif layer.name in skip_layers:
            left[layer.name] = "skip_layers"
        elif layer.name == first and not include_first:
            left[layer.name] = "first layer (sees raw pixels, few weights)"
        elif size < min_weights:
            left[layer.name] = f"{size} weights < min_weights {min_weights}"
        else:
            chosen.append(layer.name)
    return chosen, left


def check_wrappable(model: keras.Model) -> None:
    """Refuse a subclassed model: tfmot can only clone Sequential and functional models.

    Raises:
        EdgesmithError: naming the model's class.
    """
    if not (isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False)):
        raise EdgesmithError(
            f"model {model.name!r} is a subclassed {type(model).__name__}; tfmot can only wrap "
            "Sequential or functional models (rebuild it with keras.Input and layer calls)"
        )


def clone_wrapped(model: keras.Model, names: list[str], wrap) -> keras.Model:
    """Clone ``model`` with ``wrap(layer)`` applied to the named layers (weights kept)."""
    wanted = set(names)

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if layer.name not in wanted:
            return fresh
        # Weights go in before wrapping: clustering initialises its centroids from them.
        fresh.build(layer.input_shape)
        fresh.set_weights(layer.get_weights())
        try:
            return wrap(fresh)
        except (ValueError, TypeError, AttributeError) as exc:
            raise EdgesmithError(
                f"tfmot cannot wrap layer {layer.name!r} ({type(layer).__name__}): "
                f"{str(exc).splitlines()[0]}; list it in skip_layers to leave it alone"
            ) from None

    cloned = keras.models.clone_model(model, clone_function=clone)
    for old in model.layers:
        if old.weights and old.name not in wanted:
            cloned.get_layer(old.name).set_weights(old.get_weights())
    return cloned


def prune(
    source: str | Path | Artifact,
    config: PruneConfig | ChannelPruneConfig,
    out: str | Path,
    *,
    report: Reporter | None = None,
) -> Artifact:
    """Prune a Keras artifact to a target sparsity while fine-tuning, and write the result.

    Args:
        source: the Keras artifact to prune.
        config: sparsity, structure, schedule, layers to skip, fine-tuning settings.
        out: the new artifact directory.
        report: receives progress lines (stderr by default).

    Returns:
        The artifact: a stripped ``model.keras`` whose manifest holds the measured sparsity per
        layer and overall (and, for 2:4, the verified pattern per layer).

    Raises:
        EdgesmithError: for bad settings, a non-Keras or QAT source, a model tfmot cannot wrap.
    """
    if isinstance(config, ChannelPruneConfig):
        from edgesmith.compress.channel_pruning import prune_channels

        return prune_channels(source, config, out, report=report)
    report = report or stderr_reporter()
    check_output_dir(out)
    src = finetune.load_source(source, data=config.data)
    kinds = M_BY_N_LAYERS if config.structure == "2:4" else PRUNABLE
    chosen, left = select_layers(
        src.model,
        kinds=kinds,
        skip_layers=config.skip_layers,
        include_first=config.prune_first_layer,
        min_weights=config.min_weights,
    )
    if not chosen:
        raise EdgesmithError(
            f"nothing to prune in {src.artifact.path}: every layer was left alone "
            f"({'; '.join(f'{k}: {v}' for k, v in left.items())})"
        )
    total_steps = finetune.steps_per_epoch(src, config) * config.epochs
    plan = plan_schedule(total_steps, config.pruning_fraction, config.frequency)
    layer_target = layer_sparsity(src.model, chosen, config)
    wrapped = clone_wrapped(src.model, chosen, _wrapper(config, plan, layer_target))
    report(
        f"prune {config.structure} to {config.target_sparsity:.2f} ({config.sparsity_scope}; "
        f"{layer_target:.4f} in each pruned layer): {len(chosen)} layers "
        f"({', '.join(chosen)}); left dense: {', '.join(left) or 'none'}; mask updates every "
        f"{plan.frequency} steps up to step {plan.end_step} of {plan.total_steps}"
    )
    history = finetune.fit(
        wrapped,
        src,
        config,
        label="prune",
        report=report,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        status=lambda: f"sparsity {measure.sparsity_report(wrapped)['sparsity']:.3f}",
    )
    stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    metrics = finetune.measure(stripped, src)
    sparsity = measure.sparsity_report(stripped)
    per_layer = sparsity["sparsity_per_layer"]
    pruned_weights = sum(
        kernel.size for name, _, kernel in measure.kernels(stripped) if name in chosen
    )
    pruned_zeros = sum(
        int((kernel == 0).sum()) for name, _, kernel in measure.kernels(stripped) if name in chosen
    )
    metrics.update(sparsity)
    metrics["sparsity_pruned_layers"] = round(pruned_zeros / max(1, pruned_weights), 6)
    record = Pruning(
        structure=config.structure,
        target_sparsity=config.target_sparsity,
        sparsity_scope=config.sparsity_scope,
        layer_target_sparsity=layer_target,
        schedule=config.schedule,
        steps=PruningSteps(**plan.to_dict()),
        pruned_layers=tuple(chosen),
        left_dense=dict(left),
    )
    if config.structure == "2:4":
        pattern = measure.pattern_report(stripped, chosen)
        metrics["pattern_2x4_per_layer"] = pattern
        metrics["pattern_2x4"] = all(pattern.values())
        if not metrics["pattern_2x4"]:
            bad = [name for name, ok in pattern.items() if not ok]
            report(f"warning: the 2:4 pattern does not hold in {', '.join(bad)}")
    report(
        f"measured sparsity {sparsity['sparsity']:.3f} overall, "
        f"{metrics['sparsity_pruned_layers']:.3f} in pruned layers "
        f"({', '.join(f'{k} {v:.2f}' for k, v in per_layer.items())})"
    )
    return finetune.publish(
        out,
        stripped,
        src,
        technique="prune-2x4" if config.structure == "2:4" else "prune",
        config=finetune.resolved_config(config, src),
        metrics=metrics,
        pruning=record,
        history=history,
        report=report,
    )


def layer_sparsity(model: keras.Model, chosen: list[str], config: PruneConfig) -> float:
    """The sparsity each pruned layer gets so that the scope reaches the target.

    With ``sparsity_scope="model"`` the layers left dense are made up for by the pruned ones
    (a 75%-sparse model is 75% zeros over all its conv and dense kernels), up to 0.98 per layer.

    Raises:
        EdgesmithError: when the pruned layers are too few to carry the model-wide target.
    """
    if config.structure == "2:4" or config.sparsity_scope == "layers":
        return config.target_sparsity
    sizes = {name: kernel.size for name, _, kernel in measure.kernels(model)}
    total = sum(sizes.values())
    pruned = sum(sizes[name] for name in chosen)
    needed = config.target_sparsity * total / max(1, pruned)
    if needed > 0.98:
        raise EdgesmithError(
            f"sparsity {config.target_sparsity} over the whole model needs {needed:.2f} in the "
            f"pruned layers; prune more layers (lower min_weights) or use sparsity_scope layers"
        )
    return round(needed, 6)


def _wrapper(config: PruneConfig, plan: SchedulePlan, layer_target: float):
    sparsity = tfmot.sparsity.keras
    if config.structure == "2:4":
        schedule = sparsity.ConstantSparsity(0.5, begin_step=0, frequency=plan.frequency)
        return lambda layer: sparsity.prune_low_magnitude(
            layer, pruning_schedule=schedule, sparsity_m_by_n=(2, 4)
        )
    if config.schedule == "constant":
        schedule = sparsity.ConstantSparsity(
            layer_target,
            begin_step=plan.begin_step,
            end_step=plan.end_step,
            frequency=plan.frequency,
        )
    else:
        schedule = sparsity.PolynomialDecay(
            initial_sparsity=0.0,
            final_sparsity=layer_target,
            begin_step=plan.begin_step,
            end_step=plan.end_step,
            frequency=plan.frequency,
        )
    return lambda layer: sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
