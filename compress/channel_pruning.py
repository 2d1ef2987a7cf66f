"""Channel (filter) pruning that rebuilds thinner layers: fewer params, MACs, bytes, milliseconds.

tfmot only zeroes weights (its issue #732 asks for this). Here the model's graph is read to find
*channel groups*: the sets of tensors whose channels must be removed together, because a residual
``Add`` ties its inputs' channels, and BatchNorm, depthwise convs, pooling and activations pass
channels straight through. Each group's channels are ranked (L1/L2 norm of the filters that
produce them, or the |gamma| of their BatchNorms), the weakest are removed from every producer,
pass-through layer and consumer of the group, and the model is rebuilt from its config with fewer
filters and the surviving weights sliced in. Groups that touch the input, the output, or a layer
this module does not understand (Concatenate, Reshape, nested models, custom layers) keep all
their channels, so the rebuilt model always computes a sub-network of the original.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from edgesmith._tensorflow import keras, tf
from edgesmith.artifacts import Artifact, check_output_dir
from edgesmith.compress import finetune
from edgesmith.compress.config import PruneConfig
from edgesmith.errors import EdgesmithError
from edgesmith.progress import Reporter, stderr_reporter
from edgesmith.train.model_stats import count_macs, count_params

PASS_THROUGH = {
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "ThresholdedReLU",
    "Dropout",
    "SpatialDropout2D",
    "GaussianNoise",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "ZeroPadding2D",
    "Cropping2D",
    "UpSampling2D",
    "BatchNormalization",
    "DepthwiseConv2D",
}
MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
MAX_SEARCH_FRACTION = 0.95


@dataclasses.dataclass
class Group:
    """Channels that must be pruned together.

    Attributes:
        size: channel count in the source model.
        producers: conv/dense layers whose output channels these are.
        members: per-channel layers inside the group (BatchNorm, depthwise convs).
        consumers: ``(layer, positions)``: convs/dense layers reading these channels;
            ``positions`` > 1 when a Flatten sits between (dense rows ``p * C + c``).
        fixed: why the group cannot shrink (None when it can).
    """

    size: int
    producers: list[str] = dataclasses.field(default_factory=list)
    members: list[str] = dataclasses.field(default_factory=list)
    consumers: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    fixed: str | None = None

    @property
    def name(self) -> str:
        """A readable label: the first producer's name."""
        return self.producers[0] if self.producers else f"group of {self.size}"


@dataclasses.dataclass
class ChannelPlan:
    """Which channels of each group survive.

    Attributes:
        groups: every channel group of the model.
        space_of: the group index of each layer's output.
        input_space: the group index of each layer's input (first input for merges).
        flatten_positions: for a Flatten's output space, the spatial positions folded in.
        keep: surviving channel indices per prunable group index (sorted).
    """

    groups: list[Group]
    space_of: dict[str, int]
    input_space: dict[str, int]
    keep: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)

    def kept(self, space: int) -> np.ndarray:
        """Surviving channel indices of a group (all of them when it is not pruned)."""
        if space in self.keep:
            return self.keep[space]
        return np.arange(self.groups[space].size)

    def prunable(self) -> list[int]:
        """Indices of the groups that may shrink."""
        return [i for i, g in enumerate(self.groups) if g.fixed is None and g.producers]

    def summary(self) -> dict[str, list[int]]:
        """``{group name: [channels before, after]}`` for the manifest."""
        return {
            self.groups[i].name: [self.groups[i].size, int(len(self.kept(i)))]
            for i in self.prunable()
        }


class _Spaces:
    """Union-find over channel spaces."""

    def __init__(self):
        self.parent: list[int] = []
        self.groups: list[Group] = []

    def new(self, size: int, fixed: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.groups.append(Group(int(size), fixed=fixed))
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        ga, gb = self.groups[a], self.groups[b]
        if ga.size != gb.size:
            raise EdgesmithError(f"cannot merge channel groups of {ga.size} and {gb.size}")
        self.parent[b] = a
        ga.producers += gb.producers
        ga.members += gb.members
        ga.consumers += gb.consumers
        ga.fixed = ga.fixed or gb.fixed
        gb.producers, gb.members, gb.consumers = [], [], []
        gb.fixed = f"merged into {ga.name}"
        return a


def _inbound(layer) -> list:
    if not layer._inbound_nodes:
        return []
    return tf.nest.flatten(layer._inbound_nodes[0].inbound_layers)


def _channels(layer) -> int:
    shape = layer.output_shape
    shape = shape[0] if isinstance(shape, list) else shape
    return int(shape[-1])


def analyse(model: keras.Model) -> ChannelPlan:
    """Find the channel groups of a Sequential or functional model.

    Raises:
        EdgesmithError: for a subclassed model (its graph cannot be read).
    """
    from edgesmith.compress.pruning import check_wrappable

    check_wrappable(model)
    spaces = _Spaces()
    space_of: dict[str, int] = {}
    input_space: dict[str, int] = {}
    flat: dict[int, tuple[int, int]] = {}  # flatten output space -> (channel space, positions)
    for layer in model.layers:
        kind = type(layer).__name__
        parents = _inbound(layer)
        ins = [space_of[p.name] for p in parents if p.name in space_of]
        if ins:
            input_space[layer.name] = ins[0]
        if kind == "InputLayer" or not parents:
            space_of[layer.name] = spaces.new(_channels(layer), fixed="model input")
            continue
        if len(layer._inbound_nodes) > 1:
            reason = f"{layer.name} ({kind}) is called more than once"
            _fix(spaces, ins, reason, flat)
            space_of[layer.name] = spaces.new(_channels(layer), fixed=reason)
            continue
        one = ins[0] if len(ins) == 1 else None
        if kind in ("Conv2D", "Dense") and one is not None and getattr(layer, "groups", 1) == 1:
            if one in flat and kind == "Dense":
                source, positions = flat[one]
                spaces.groups[spaces.find(source)].consumers.append((layer.name, positions))
            elif one in flat:
                _fix(spaces, [one], f"{layer.name} reads a Flatten output", flat)
            else:
                spaces.groups[spaces.find(one)].consumers.append((layer.name, 1))
            space_of[layer.name] = spaces.new(_channels(layer))
            spaces.groups[space_of[layer.name]].producers.append(layer.name)
        elif kind == "Flatten" and one is not None and one not in flat:
            in_shape = layer.input_shape
            positions = int(np.prod(in_shape[1:-1])) if len(in_shape) > 2 else 1
            space_of[layer.name] = spaces.new(_channels(layer), fixed="flattened")
            flat[space_of[layer.name]] = (one, positions)
        elif (
            kind in PASS_THROUGH
            and getattr(getattr(layer, "activation", None), "__name__", "") != "softmax"
            and one is not None
            and one not in flat
            and getattr(layer, "depth_multiplier", 1) == 1
            and _channels(layer) == spaces.groups[spaces.find(one)].size
        ):
            space_of[layer.name] = one
            if layer.weights:
                spaces.groups[spaces.find(one)].members.append(layer.name)
        elif kind in MERGES and len(ins) == len(parents) and not any(i in flat for i in ins):
            root = ins[0]
            for other in ins[1:]:
                root = spaces.union(root, other)
            space_of[layer.name] = root
        else:
            reason = f"{layer.name} ({kind}) is not channel-transparent"
            _fix(spaces, ins, reason, flat)
            space_of[layer.name] = spaces.new(_channels(layer), fixed=reason)
    for output in model.outputs:
        layer = output._keras_history.layer
        _fix(spaces, [space_of[layer.name]], "model output", flat)
    roots = {name: spaces.find(s) for name, s in space_of.items()}
    inputs = {name: spaces.find(s) for name, s in input_space.items()}
    # Flatten spaces map to their channel space's root for slicing.
    return ChannelPlan(spaces.groups, roots, inputs)


def _fix(spaces: _Spaces, ins: list[int], reason: str, flat: dict) -> None:
    for space in ins:
        if space in flat:
            space = flat[space][0]
        group = spaces.groups[spaces.find(space)]
        group.fixed = group.fixed or reason


def importance(model: keras.Model, plan: ChannelPlan, group: int, ranking: str) -> np.ndarray:
    """Score each channel of a group; the lowest are removed first.

    Each producer's (or BatchNorm's) scores are divided by their maximum before summing, so a
    residual group is not ranked by whichever layer happens to have the largest weights.
    """
    g = plan.groups[group]
    scores = np.zeros(g.size)
    if ranking == "bn":
        norms = [
            np.abs(model.get_layer(name).gamma.numpy())
            for name in g.members
            if type(model.get_layer(name)).__name__ == "BatchNormalization"
            and model.get_layer(name).gamma is not None
        ]
        if norms:
            for n in norms:
                scores += n / max(float(n.max()), 1e-12)
            return scores
    order = 2 if ranking == "l2" else 1
    for name in g.producers:
        kernel = model.get_layer(name).kernel.numpy()
        flat = kernel.reshape(-1, kernel.shape[-1])
        n = np.linalg.norm(flat, ord=order, axis=0)
        scores += n / max(float(n.max()), 1e-12)
    return scores


def choose(
    model: keras.Model, plan: ChannelPlan, fraction: float, ranking: str, round_to: int
) -> ChannelPlan:
    """Keep the strongest ``1 - fraction`` of every prunable group's channels (in place)."""
    plan.keep = {}
    for group in plan.prunable():
        size = plan.groups[group].size
        count = int(round((1.0 - fraction) * size / round_to)) * round_to
        count = min(size, max(round_to if round_to < size else 1, count))
        if count >= size:
            continue
        scores = importance(model, plan, group, ranking)
        strongest = np.argsort(-scores, kind="stable")[:count]
        plan.keep[group] = np.sort(strongest)
    return plan


def rebuild(model: keras.Model, plan: ChannelPlan, *, weights: bool = True) -> keras.Model:
    """Build the thinner model the plan describes, with the surviving weights sliced in."""
    config = model.get_config()
    for entry in config["layers"]:
        name = entry["config"]["name"]
        if name not in plan.space_of:
            continue
        kind = entry["class_name"]
        out = len(plan.kept(plan.space_of[name]))
        if kind == "Conv2D":
            entry["config"]["filters"] = out
        elif kind == "Dense":
            entry["config"]["units"] = out
    if isinstance(model, keras.Sequential):
        thin = keras.Sequential.from_config(config)
    else:
        thin = keras.Model.from_config(config)
    if weights:
        for layer in model.layers:
            if layer.weights:
                thin.get_layer(layer.name).set_weights(_slice(layer, plan))
    return thin


def _slice(layer, plan: ChannelPlan) -> list[np.ndarray]:
    values = layer.get_weights()
    kind = type(layer).__name__
    out_idx = plan.kept(plan.space_of[layer.name])
    in_space = plan.input_space.get(layer.name)
    if kind in ("Conv2D", "Dense"):
        in_idx = _input_rows(plan, layer.name, in_space)
        kernel = values[0]
        kernel = kernel[..., in_idx, :] if kind == "Conv2D" else kernel[in_idx, :]
        sliced = [kernel[..., out_idx]]
        if len(values) > 1:
            sliced.append(values[1][out_idx])
        return sliced
    if kind == "DepthwiseConv2D":
        sliced = [values[0][:, :, out_idx, :]]
        if len(values) > 1:
            sliced.append(values[1][out_idx])
        return sliced
    if kind == "BatchNormalization":
        return [v[out_idx] for v in values]
    return values  # a layer whose channels are all fixed keeps its weights


def _input_rows(plan: ChannelPlan, name: str, in_space: int | None) -> np.ndarray:
    for group_index in plan.prunable():
        for consumer, positions in plan.groups[group_index].consumers:
            if consumer == name:
                kept = plan.kept(group_index)
                size = plan.groups[group_index].size
                if positions == 1:
                    return kept
                return (np.arange(positions)[:, None] * size + kept[None, :]).reshape(-1)
    if in_space is None:
        raise EdgesmithError(f"layer {name} has no input to slice")
    return slice(None)  # type: ignore[return-value]


def plan_for(model: keras.Model, config: PruneConfig) -> tuple[ChannelPlan, float]:
    """The plan and the channel fraction used: ``sparsity``, or searched for ``mac_reduction``.

    Raises:
        EdgesmithError: when no channel group can shrink, or the MAC target is out of reach.
    """
    plan = analyse(model)
    if not plan.prunable():
        reasons = sorted({g.fixed for g in plan.groups if g.fixed and g.producers})
        raise EdgesmithError(
            f"no channel group of model {model.name!r} can shrink: {'; '.join(reasons)}"
        )
    if config.mac_reduction is None:
        return choose(model, plan, config.target_sparsity, config.ranking, config.round_to), (
            config.target_sparsity
        )
    base = count_macs(model)
    goal = base * (1.0 - config.mac_reduction)

    def macs_at(fraction: float) -> int:
        choose(model, plan, fraction, config.ranking, config.round_to)
        return count_macs(rebuild(model, plan, weights=False))

    low, high = 0.0, MAX_SEARCH_FRACTION
    if macs_at(high) > goal:
        raise EdgesmithError(
            f"mac_reduction {config.mac_reduction} is out of reach: removing "
            f"{MAX_SEARCH_FRACTION:.0%} of every prunable group's channels leaves "
            f"{macs_at(high) / base:.0%} of the MACs"
        )
    for _ in range(12):
        middle = (low + high) / 2
        if macs_at(middle) <= goal:
            high = middle
        else:
            low = middle
    choose(model, plan, high, config.ranking, config.round_to)
    return plan, round(high, 4)


def prune_channels(
    source: str | Path | Artifact,
    config: PruneConfig,
    out: str | Path,
    *,
    report: Reporter | None = None,
) -> Artifact:
    """Remove whole channels, rebuild the model thinner, fine-tune it, and write the artifact.

    Args:
        source: the Keras artifact.
        config: ``structure="channels"`` with ``sparsity`` (channel fraction per group) or
            ``mac_reduction``, ``ranking``, ``round_to`` and fine-tuning settings.
        out: the new artifact directory.
        report: receives progress lines.

    Returns:
        A plain ``model.keras`` artifact with its new params and MACs, before and after.

    Raises:
        EdgesmithError: for a subclassed model, nothing prunable, or an unreachable MAC target.
    """
    report = report or stderr_reporter()
    check_output_dir(out)
    src = finetune.load_source(source, data=config.data)
    plan, fraction = plan_for(src.model, config)
    thin = rebuild(src.model, plan)
    before = {"params": count_params(src.model), "macs": count_macs(src.model)}
    after = {"params": count_params(thin), "macs": count_macs(thin)}
    report(
        f"prune channels: {fraction:.1%} of each prunable group removed ({config.ranking} "
        f"ranking); MACs {before['macs'] / 1e6:.2f} M -> {after['macs'] / 1e6:.2f} M, "
        f"params {before['params']:,} -> {after['params']:,}; "
        + ", ".join(f"{k} {a}->{b}" for k, (a, b) in plan.summary().items())
    )
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
    fixed = {
        g.name: g.fixed for g in plan.groups if g.producers and g.fixed and g.fixed != "flattened"
    }
    extra = {
        "pruning": {
            "structure": "channels",
            "channel_fraction": fraction,
            "ranking": config.ranking,
            "groups": {
                plan.groups[i].name: {
                    "producers": plan.groups[i].producers,
                    "members": plan.groups[i].members,
                    "consumers": [c for c, _ in plan.groups[i].consumers],
                }
                for i in plan.prunable()
            },
            "kept_whole": fixed,
        }
    }
    return finetune.publish(
        out,
        thin,
        src,
        technique="prune-channels",
        config=finetune.resolved_config(config, src, channel_fraction=fraction),
        metrics=metrics,
        extra=extra,
        history=history,
        report=report,
    )
