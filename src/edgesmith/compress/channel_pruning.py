"""Channel (filter) pruning that rebuilds thinner layers: fewer params, MACs, bytes, milliseconds.

tfmot only zeroes weights (its issue #732 asks for this). Here the model's graph is read
(:mod:`edgesmith.compress.channel_graph`) to find *channel groups*: the sets of channels that must
be removed together, because a residual ``Add`` or an SE ``Multiply`` ties its inputs' channels,
and BatchNorm, depthwise convs, pooling and activations pass channels straight through; a channel
``Concatenate`` keeps each input's group separate, and nested models are flattened first. Each
group's channels are ranked (L1/L2 norm of the filters that produce them, or the |gamma| of their
BatchNorms), the weakest are removed from every producer, per-channel layer and consumer of the
group, and the model is rebuilt from its config with fewer filters and the surviving weights
sliced in. Groups that touch the input, the output, or a layer the graph reader does not
understand (a custom layer, a Lambda, a LayerNormalization) keep all their channels, with the
reason in the manifest, so the rebuilt model always computes a sub-network of the original.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgesmith.compress import finetune
from edgesmith.compress.channel_graph import (
    MERGES,
    PASS_THROUGH,
    PRODUCERS,
    ChannelPlan,
    Group,
    analyse,
    is_nested_model,
    kind_of,
)
from edgesmith.compress.config import ChannelPruneConfig
from edgesmith.compress.width_search import SearchResult
from edgesmith.core.artifacts import Artifact, check_output_dir
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import ChannelPruning, WidthSearch
from edgesmith.core.progress import Reporter, stderr_reporter
from edgesmith.tfkeras.backend import keras
from edgesmith.tfkeras.model_stats import count_macs, count_params

__all__ = [
    "MERGES",
    "PASS_THROUGH",
    "ChannelPlan",
    "Group",
    "analyse",
    "choose",
    "importance",
    "kept_whole",
    "plan_for",
    "prune_channels",
    "rebuild",
]

MAX_SEARCH_FRACTION = 0.95
#: training images calibrating the int8 files the width search times
SEARCH_CALIBRATION_IMAGES = 32


def _source(model: keras.Model, plan: ChannelPlan) -> keras.Model:
    """The model a plan's layer names refer to: the flattened copy when there was one."""
    return plan.model if plan.model is not None else model


def _short(weight) -> str:
    """``"block/conv/kernel:0"`` -> ``"kernel"``."""
    return weight.name.rsplit("/", 1)[-1].split(":", 1)[0]


def _out_axis(kind: str | None) -> int:
    """The output-channel axis of a producer's kernel (transposed convs store it second last)."""
    return -2 if kind is not None and kind.endswith("Transpose") else -1


def importance(model: keras.Model, plan: ChannelPlan, group: int, ranking: str) -> np.ndarray:
    """Score each channel of a group; the lowest are removed first.

    Each producer's (or BatchNorm's) scores are divided by their maximum before summing, so a
    residual group is not ranked by whichever layer happens to have the largest weights.
    """
    source = _source(model, plan)
    g = plan.groups[group]
    scores = np.zeros(g.size)
    if ranking == "bn":
        found = False
        for name in g.members:
            layer = source.get_layer(name)
            if kind_of(layer) != "BatchNormalization" or layer.gamma is None:
                continue
            gamma = np.abs(layer.gamma.numpy())
            for where in plan.positions(plan.layouts[name], group):
                n = gamma[where]
                scores += n / max(float(n.max()), 1e-12)
                found = True
        if found:
            return scores
    order = 2 if ranking == "l2" else 1
    for name in g.producers:
        layer = source.get_layer(name)
        kind = kind_of(layer)
        kernel = getattr(layer, "pointwise_kernel", None)
        kernel = (kernel if kernel is not None else layer.kernel).numpy()
        kernel = np.moveaxis(kernel, _out_axis(kind), -1)
        flat = kernel.reshape(-1, kernel.shape[-1])
        n = np.linalg.norm(flat, ord=order, axis=0)
        scores += n / max(float(n.max()), 1e-12)
    return scores


def choose(
    model: keras.Model,
    plan: ChannelPlan,
    fraction: float,
    ranking: str,
    round_to: int,
    widths: dict[int, int] | None = None,
) -> ChannelPlan:
    """Keep the strongest ``1 - fraction`` of every prunable group's channels (in place).

    ``widths`` (group index -> channel count, from :func:`resolve_widths`) overrides the
    fraction for the groups it names; their counts are kept exactly, not rounded.
    """
    plan.keep = {}
    widths = widths or {}
    for group in plan.prunable():
        size = plan.groups[group].size
        if group in widths:
            if widths[group] < size:
                scores = importance(model, plan, group, ranking)
                plan.keep[group] = np.sort(np.argsort(-scores, kind="stable")[: widths[group]])
            continue
        if size <= round_to:
            continue  # no smaller multiple of round_to exists: the group keeps every channel
        count = int(round((1.0 - fraction) * size / round_to)) * round_to
        count = min(size, max(round_to, count))
        if count >= size:
            continue
        scores = importance(model, plan, group, ranking)
        strongest = np.argsort(-scores, kind="stable")[:count]
        plan.keep[group] = np.sort(strongest)
    return plan


def _custom_objects(model: keras.Model) -> dict[str, type]:
    """Every custom layer class in the model, under both its name and its registered name.

    ``from_config`` then re-creates custom layers without the user registering them.
    """
    found: dict[str, type] = {}
    for layer in model.layers:
        if is_nested_model(layer):
            found.update({k: v for k, v in _custom_objects(layer).items() if k not in found})
        if kind_of(layer) is None:
            cls = type(layer)
            found.setdefault(cls.__name__, cls)
            found.setdefault(keras.utils.get_registered_name(cls), cls)
    return found


def rebuild(model: keras.Model, plan: ChannelPlan, *, weights: bool = True) -> keras.Model:
    """Build the thinner model the plan describes, with the surviving weights sliced in.

    Raises:
        EdgesmithError: when a layer cannot be re-created from its config.
    """
    source = _source(model, plan)
    config = source.get_config()
    for entry in config["layers"]:
        # A saved build shape would build the layer at its old width before it is called.
        entry.pop("build_config", None)
        name = entry["config"].get("name")
        if entry["class_name"] == "Lambda":
            _reuse_functions(entry["config"], source.get_layer(name))
        if name not in plan.layouts:
            continue
        kind = entry["class_name"]
        width = len(plan.indices(plan.layouts[name]))
        if kind in PRODUCERS:
            entry["config"][PRODUCERS[kind]] = width
        elif kind == "Reshape" and entry["config"]["target_shape"][-1] != -1:
            target = list(entry["config"]["target_shape"])
            entry["config"]["target_shape"] = (*target[:-1], width)
    cls = keras.Sequential if isinstance(source, keras.Sequential) else keras.Model
    try:
        thin = cls.from_config(config, custom_objects=_custom_objects(source))
    except (TypeError, ValueError, KeyError, NotImplementedError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgesmithError(
            f"model {source.name!r} cannot be rebuilt from its config ({first}); custom layers "
            "need a get_config() that returns their constructor arguments"
        ) from None
    names = {layer.name for layer in thin.layers}
    lost = [layer for layer in source.layers if layer.name not in names]
    if lost:
        raise EdgesmithError(
            f"layer {lost[0].name!r} ({type(lost[0]).__name__}) of model {source.name!r} is not "
            "re-created by its from_config(); give it a get_config() that returns its "
            "constructor arguments, name included"
        )
    if weights:
        for layer in source.layers:
            if layer.weights:
                thin.get_layer(layer.name).set_weights(_slice(layer, plan))
    return thin


def _reuse_functions(config: dict, layer) -> None:
    """Hand a Lambda's own Python functions back to ``from_config`` ("raw"), not their bytecode.

    The config comes from the model in memory, so nothing untrusted is loaded; Keras' safe mode
    would otherwise refuse a ``lambda``, and a named function outside Keras would not be found.
    """
    for key, attr in (
        ("function", "function"),
        ("output_shape", "_output_shape"),
        ("mask", "mask"),
    ):
        if config.get(f"{key}_type") in ("lambda", "function"):
            config[key] = getattr(layer, attr)
            config[f"{key}_type"] = "raw"


def _weight_indices(layer, plan: ChannelPlan) -> list[dict[int, np.ndarray]]:
    """For each of a layer's weights, ``{axis: surviving indices}`` (empty: kept as it is)."""
    kind = kind_of(layer)
    name = layer.name
    if name not in plan.layouts or kind is None:
        return [{} for _ in layer.weights]
    out = plan.indices(plan.layouts[name])
    axes: list[dict[int, np.ndarray]] = []
    for weight in layer.weights:
        short, rank = _short(weight), len(weight.shape)
        if kind in PRODUCERS:
            rows = plan.input_rows(name)
            if short == "kernel":
                axes.append(
                    {-2: out, -1: rows} if kind.endswith("Transpose") else {-2: rows, -1: out}
                )
            elif short == "depthwise_kernel":
                axes.append({-2: rows})
            elif short == "pointwise_kernel":
                multiplier = int(layer.depth_multiplier)
                expanded = (rows[:, None] * multiplier + np.arange(multiplier)).reshape(-1)
                axes.append({-2: expanded, -1: out})
            else:  # bias
                axes.append({0: out})
        elif kind.startswith("DepthwiseConv"):
            axes.append({-2: out} if short == "depthwise_kernel" else {0: out})
        elif kind == "BatchNormalization":
            axes.append({0: out})
        elif kind in ("Normalization", "PReLU"):
            channels = plan.width(plan.layouts[name])
            axes.append({-1: out} if rank and weight.shape[-1] == channels else {})
        else:
            axes.append({})
    return axes


def _slice(layer, plan: ChannelPlan) -> list[np.ndarray]:
    sliced = []
    for value, axes in zip(layer.get_weights(), _weight_indices(layer, plan), strict=True):
        for axis, idx in axes.items():
            if len(idx) != value.shape[axis]:
                value = np.take(value, idx, axis=axis)
        sliced.append(value)
    return sliced


def _thin_sizes(layer, plan: ChannelPlan) -> dict[str, int]:
    """``{weight's short name: element count}`` of a layer once the plan has sliced it."""
    sizes = {}
    for weight, axes in zip(layer.weights, _weight_indices(layer, plan), strict=True):
        dims = list(weight.shape)
        for axis, idx in axes.items():
            dims[axis] = len(idx)
        sizes[_short(weight)] = int(np.prod(dims))
    return sizes


def _thin_macs(model: keras.Model, plan: ChannelPlan) -> int:
    """What ``count_macs(rebuild(model, plan))`` returns, without building the model.

    Spatial sizes never change, so each layer's count is its output positions times its
    kernel's sliced shape (the formula of :func:`edgesmith.tfkeras.model_stats.count_macs`).
    Re-creating a 240-layer EfficientNet takes seconds; the MAC search asks a dozen times.
    """
    return _thin_total(model, plan, _layer_macs, nested=count_macs)


def _layer_macs(layer: keras.layers.Layer, plan: ChannelPlan) -> int:
    """One layer's MACs at the plan's widths: output positions times its sliced kernels."""
    shape = layer.output_shape
    shape = tuple(shape[0] if isinstance(shape, list) else shape)
    positions = int(np.prod([d for d in shape[1:-1] if d is not None] or [1]))
    thin = _thin_sizes(layer, plan)
    if getattr(layer, "depthwise_kernel", None) is not None:
        separable = getattr(layer, "pointwise_kernel", None) is not None
        return positions * (
            thin["depthwise_kernel"] + (thin["pointwise_kernel"] if separable else 0)
        )
    if getattr(layer, "kernel", None) is not None:
        return positions * thin.get("kernel", int(np.prod(tuple(layer.kernel.shape))))
    return 0


def _thin_params(model: keras.Model, plan: ChannelPlan) -> int:
    """What ``count_params(rebuild(model, plan))`` returns, without building the model."""
    return _thin_total(model, plan, _layer_params, nested=count_params)


def _layer_params(layer: keras.layers.Layer, plan: ChannelPlan) -> int:
    return sum(_thin_sizes(layer, plan).values())


def _thin_total(
    model: keras.Model,
    plan: ChannelPlan,
    per_layer: Callable[[keras.layers.Layer, ChannelPlan], int],
    *,
    nested: Callable[[keras.Model], int],
) -> int:
    """A count summed over the thinned model's layers; a nested model counts as it stands."""
    layers = _source(model, plan).layers
    return int(sum(nested(la) if is_nested_model(la) else per_layer(la, plan) for la in layers))


def resolve_widths(plan: ChannelPlan, widths: dict[str, int]) -> dict[int, int]:
    """Map ``{producer layer name: channels}`` to ``{group index: channels}``.

    A group may be named by any conv/dense layer that produces it (in a residual stage, each
    conv whose output is added). Unknown names (the message lists the groups), groups that
    cannot shrink (with the reason), counts above a group's size and two counts for one group
    are refused.

    Raises:
        EdgesmithError: naming the offending entry and what was expected.
    """
    by_name: dict[str, int] = {}
    for i, group in enumerate(plan.groups):
        for producer in group.producers:
            by_name[producer] = i
    prunable = plan.prunable()
    choices = ", ".join(f"{plan.groups[i].name} ({plan.groups[i].size})" for i in prunable)
    resolved: dict[int, int] = {}
    for name, count in widths.items():
        if name not in by_name:
            raise EdgesmithError(
                f"widths names {name!r}, which produces no channel group; the groups (channels)"
                f" are: {choices}"
            )
        group = by_name[name]
        size = plan.groups[group].size
        if group not in prunable:
            raise EdgesmithError(
                f"widths[{name!r}]: its group keeps every channel ({plan.groups[group].fixed})"
            )
        if count > size:
            raise EdgesmithError(f"widths[{name!r}] is {count} channels; its group has {size}")
        if resolved.get(group, count) != count:
            raise EdgesmithError(
                f"widths gives {name!r}'s group ({plan.groups[group].name}) two counts: "
                f"{resolved[group]} and {count}"
            )
        resolved[group] = count
    return resolved


def _analyse_prunable(model: keras.Model) -> ChannelPlan:
    plan = analyse(model)
    if not plan.prunable():
        reasons = sorted({g.fixed for g in plan.groups if g.fixed and g.producers})
        reasons = reasons or sorted(set(plan.whole.values())) or ["it has no conv or dense layer"]
        raise EdgesmithError(
            f"no channel group of model {model.name!r} can shrink: {'; '.join(reasons)}"
        )
    return plan


def plan_by_latency(
    model: keras.Model, config: ChannelPruneConfig, calibration: np.ndarray, report: Reporter
) -> tuple[ChannelPlan, SearchResult]:
    """The plan with the widths the latency search picked (timed on this machine).

    The targets are ``config.max_latency_ratio``, ``config.mac_reduction`` and
    ``config.param_reduction``; see
    :mod:`edgesmith.compress.width_search`.

    Raises:
        EdgesmithError: when nothing can shrink or the targets are out of reach.
    """
    from edgesmith.compress.width_search import TfliteTimer, search_widths

    plan = _analyse_prunable(model)

    def macs_of(widths: dict[int, int]) -> int:
        choose(model, plan, 0.0, config.ranking, 1, widths)
        return _thin_macs(model, plan)

    def params_of(widths: dict[int, int]) -> int:
        choose(model, plan, 0.0, config.ranking, 1, widths)
        return _thin_params(model, plan)

    report(
        f"width search: int8 latency <= {config.max_latency_ratio}x the source"
        + (f", MACs -{config.mac_reduction:.0%}" if config.mac_reduction else "")
        + (f", parameters -{config.param_reduction:.0%}" if config.param_reduction else "")
        + f", {len(plan.prunable())} groups, "
        + (
            f"widths in steps of {config.round_to}"
            if config.round_to > 1
            else "widths in steps of an eighth of each group (--round-to 8 suits XNNPACK)"
        )
    )
    with TfliteTimer(
        model, plan, calibration, threads=config.latency_threads, ranking=config.ranking
    ) as timer:
        result = search_widths(
            plan,
            macs_of=macs_of,
            params_of=params_of,
            measure=timer,
            max_latency_ratio=config.max_latency_ratio,
            min_mac_reduction=config.mac_reduction or 0.0,
            min_param_reduction=config.param_reduction or 0.0,
            round_to=config.round_to,
            report=report,
        )
    choose(model, plan, 0.0, config.ranking, 1, result.widths)
    return plan, result


def widths_flag(plan: ChannelPlan) -> str:
    """The ``--widths`` text that rebuilds this plan's widths (to reuse a searched result)."""
    return ",".join(f"{plan.groups[i].name}={len(plan.kept(i))}" for i in plan.prunable())


def plan_for(model: keras.Model, config: ChannelPruneConfig) -> tuple[ChannelPlan, float]:
    """The plan and the channel fraction used: ``sparsity``, or searched for ``mac_reduction``.

    Groups named in ``config.widths`` get exactly that many channels; the fraction applies to
    the others (0 when neither ``sparsity`` nor ``mac_reduction`` is set).

    Raises:
        EdgesmithError: when no channel group can shrink, or the MAC target is out of reach.
    """
    plan = _analyse_prunable(model)
    widths = resolve_widths(plan, config.widths) if config.widths else {}
    if config.mac_reduction is None:
        fraction = config.target_sparsity
        return choose(model, plan, fraction, config.ranking, config.round_to, widths), fraction
    base = count_macs(model)
    goal = base * (1.0 - config.mac_reduction)

    def macs_at(fraction: float) -> int:
        choose(model, plan, fraction, config.ranking, config.round_to, widths)
        return _thin_macs(model, plan)

    low, high = 0.0, MAX_SEARCH_FRACTION
    if widths and not set(plan.prunable()) - set(widths) and macs_at(0.0) > goal:
        raise EdgesmithError(
            f"mac_reduction {config.mac_reduction} is out of reach: the widths given name every "
            f"group and leave {macs_at(0.0) / base:.0%} of the MACs"
        )
    if macs_at(high) > goal:
        raise EdgesmithError(
            f"mac_reduction {config.mac_reduction} is out of reach: removing "
            f"{MAX_SEARCH_FRACTION:.0%} of every "
            f"{'other ' if widths else ''}prunable group's channels leaves "
            f"{macs_at(high) / base:.0%} of the MACs"
        )
    for _ in range(12):
        middle = (low + high) / 2
        if macs_at(middle) <= goal:
            high = middle
        else:
            low = middle
    choose(model, plan, high, config.ranking, config.round_to, widths)
    return plan, round(high, 4)


def kept_whole(plan: ChannelPlan) -> dict[str, str]:
    """``{group or layer: why it keeps all its channels}`` for the manifest.

    Groups produced by a conv/dense layer that cannot shrink are named by that layer; layers
    with weights the graph reader does not understand (custom layers, nested models that could
    not be flattened) are named themselves.
    """
    fixed = {
        g.name: g.fixed
        for g in plan.groups
        if g.producers and g.fixed and not g.fixed.startswith("merged into")
    }
    for name, reason in plan.whole.items():
        fixed.setdefault(name, reason)
    return fixed


def prune_channels(
    source: str | Path | Artifact,
    config: ChannelPruneConfig,
    out: str | Path,
    *,
    report: Reporter | None = None,
) -> Artifact:
    """Remove whole channels, rebuild the model thinner, fine-tune it, and write the artifact.

    Args:
        source: the Keras artifact.
        config: ``structure="channels"`` with ``sparsity`` (channel fraction per group),
            ``mac_reduction``, ``widths`` (exact counts for named groups) or
            ``max_latency_ratio`` (widths searched by timing int8 candidates here), and
            ``ranking``, ``round_to`` and fine-tuning settings.
        out: the new artifact directory.
        report: receives progress lines.

    Returns:
        A plain ``model.keras`` artifact with its new params and MACs, before and after, its
        widths as ``--widths`` text, and the search's steps when there was one.

    Raises:
        EdgesmithError: for a subclassed model, nothing prunable, bad widths, or an
            unreachable MAC or latency target.
    """
    report = report or stderr_reporter()
    check_output_dir(out)
    src = finetune.load_source(source, data=config.data)
    search = None
    if config.max_latency_ratio is not None:
        calibration = src.norm.apply(src.dataset.x_train[:SEARCH_CALIBRATION_IMAGES])
        started = time.perf_counter()
        plan, search = plan_by_latency(src.model, config, calibration, report)
        search_seconds = round(time.perf_counter() - started, 1)
        fraction = None
        how = f"widths searched for {search.latency_ratio:.3f}x the int8 latency"
    else:
        plan, fraction = plan_for(src.model, config)
        how = f"{fraction:.1%} of each prunable group removed"
        if config.widths:
            named = len(resolve_widths(plan, config.widths))
            how = f"{named} groups set by widths, {fraction:.1%} of the others removed"
    thin = rebuild(src.model, plan)
    before = {"params": count_params(src.model), "macs": count_macs(src.model)}
    after = {"params": count_params(thin), "macs": count_macs(thin)}
    report(
        f"prune channels: {how} ({config.ranking} ranking); MACs {before['macs'] / 1e6:.2f} M "
        f"-> {after['macs'] / 1e6:.2f} M, params {before['params']:,} -> {after['params']:,}; "
        + ", ".join(f"{k} {a}->{b}" for k, (a, b) in plan.summary().items())
    )
    if search is not None:
        report(f"prune channels: the same widths without the search: --widths {widths_flag(plan)}")
    history = finetune.fit(thin, src, config, label="prune-channels", report=report)
    metrics = finetune.measure(thin, src)
    metrics.update(
        {
            "params_source": before["params"],
            "macs_source": before["macs"],
            "mac_reduction": round(1 - after["macs"] / before["macs"], 6),
            "param_reduction": round(1 - after["params"] / before["params"], 6),
            "channels": plan.summary(),
        }
    )
    fixed = kept_whole(plan)
    searched = None
    if search is not None:
        searched = WidthSearch(
            max_latency_ratio=config.max_latency_ratio,
            latency_ratio=round(search.latency_ratio, 4),
            mac_ratio=round(search.mac_ratio, 4),
            param_ratio=None if search.param_ratio is None else round(search.param_ratio, 4),
            threads=config.latency_threads,
            seconds=search_seconds,
            steps=tuple(search.steps),
        )
    record = ChannelPruning(
        structure="channels",
        channel_fraction=fraction,
        ranking=config.ranking,
        groups={
            plan.groups[i].name: {
                "producers": plan.groups[i].producers,
                "members": plan.groups[i].members,
                "consumers": [c for c, _ in plan.groups[i].consumers],
            }
            for i in plan.prunable()
        },
        kept_whole=fixed,
        flattened=tuple(plan.flattened),
        widths=widths_flag(plan),
        width_search=searched,
    )
    return finetune.publish(
        out,
        thin,
        src,
        technique="prune-channels",
        config=finetune.resolved_config(config, src, channel_fraction=fraction),
        metrics=metrics,
        pruning=record,
        history=history,
        report=report,
    )
