"""The channel graph of a Keras model: which channels must be pruned together, and why some can't.

Every tensor's last (channel) axis gets a *layout*: a sequence of blocks, each the
concatenation of some channel groups, repeated ``repeat`` times (a Flatten folds spatial positions
into the channel axis: row ``p * C + c``). A conv's output is one new group; BatchNorm, depthwise
convs, pooling, padding and element-wise activations keep their input's layout; a residual
``Add`` or an SE ``Multiply`` ties its inputs group by group (a ``(1, 1, C)`` gate against an
``(H, W, C)`` map ties the gate's conv to the map's); a channel ``Concatenate`` joins its inputs'
layouts, so each input group can still shrink and its consumers read the matching rows; a
``Reshape`` that keeps channels innermost keeps the layout; ``x + 3.0``-style TFOpLambda layers
(MobileNetV3's hard-swish) are element-wise. Nested models are first flattened into one
functional graph, so their layers prune like the outer ones.

Anything this module does not understand (a custom layer, a Lambda, a LayerNormalization, a
layer called twice) fixes every group it touches, with the reason kept for the manifest: the
rebuilt model always computes a sub-network of the original.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.tfkeras.backend import keras, tf

# Layers that make new channels, and the config key of how many.
PRODUCERS = {
    "Conv1D": "filters",
    "Conv2D": "filters",
    "Conv3D": "filters",
    "SeparableConv1D": "filters",
    "SeparableConv2D": "filters",
    "Conv1DTranspose": "filters",
    "Conv2DTranspose": "filters",
    "Conv3DTranspose": "filters",
    "Dense": "units",
}
# Layers with one weight (or statistic) per channel, sliced along the channel axis.
PER_CHANNEL = {"BatchNormalization", "DepthwiseConv1D", "DepthwiseConv2D", "Normalization", "PReLU"}
# Layers without weights that treat every channel alike and keep the channel count.
PASS_THROUGH = {
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "ThresholdedReLU",
    "Identity",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Rescaling",
    "RepeatVector",
    "Resizing",
    "CenterCrop",
    "RandomFlip",
    "RandomCrop",
    "RandomTranslation",
    "RandomRotation",
    "RandomZoom",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
}
MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
# Keras activations that act on each value alone (softmax and log_softmax mix channels).
ELEMENTWISE_ACTIVATIONS = {
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "sigmoid",
    "hard_sigmoid",
    "swish",
    "silu",
    "hard_silu",
    "hard_swish",
    "mish",
    "tanh",
    "softplus",
    "softsign",
    "exponential",
}
# tf functions a functional model records as TFOpLambda layers (``x * 0.5``, ``tf.nn.relu6(x)``):
# element-wise, so channel-transparent when their other arguments are plain numbers.
TF_OPS_UNARY = {
    "nn.relu",
    "nn.relu6",
    "nn.silu",
    "nn.swish",
    "nn.elu",
    "nn.selu",
    "nn.gelu",
    "nn.sigmoid",
    "math.sigmoid",
    "nn.tanh",
    "math.tanh",
    "math.softplus",
    "nn.softplus",
    "math.abs",
    "math.negative",
    "math.square",
    "math.sqrt",
    "math.exp",
    "clip_by_value",
}
TF_OPS_BINARY = {
    "__operators__.add",
    "math.add",
    "math.subtract",
    "math.multiply",
    "math.truediv",
    "math.divide",
    "math.maximum",
    "math.minimum",
    "math.scalar_mul",
}


@dataclasses.dataclass(frozen=True)
class Block:
    """Part of a channel axis: the concatenation of ``groups``, repeated ``repeat`` times."""

    groups: tuple[int, ...]
    repeat: int = 1


Layout = tuple[Block, ...]


@dataclasses.dataclass
class Group:
    """Channels that must be pruned together.

    Attributes:
        size: channel count in the source model.
        producers: conv/dense layers whose output channels these are.
        members: per-channel layers the group passes through (BatchNorm, depthwise convs).
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
        space_of: the group of each layer's output, for outputs that are one group.
        input_space: the group of each layer's first input, when that input is one group.
        keep: surviving channel indices per prunable group index (sorted).
        layouts: each single-call layer's output layout (group indices are roots).
        input_layouts: each single-call layer's input layouts, in call order.
        whole: layers with weights kept whole, and why (custom layers, nested models).
        model: the model the plan describes when it is not the one analysed (nested models
            flattened into one graph); ``None`` when it is the model itself.
        flattened: names of the nested models whose layers were lifted into the outer graph.
    """

    groups: list[Group]
    space_of: dict[str, int]
    input_space: dict[str, int]
    keep: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    layouts: dict[str, Layout] = dataclasses.field(default_factory=dict)
    input_layouts: dict[str, list[Layout]] = dataclasses.field(default_factory=dict)
    whole: dict[str, str] = dataclasses.field(default_factory=dict)
    model: keras.Model | None = None
    flattened: list[str] = dataclasses.field(default_factory=list)

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

    def width(self, layout: Layout) -> int:
        """Channel count of a layout in the source model."""
        return sum(sum(self.groups[g].size for g in b.groups) * b.repeat for b in layout)

    def indices(self, layout: Layout) -> np.ndarray:
        """Surviving positions along a layout's channel axis, in order.

        A concatenation keeps each part's surviving channels shifted by the part's start; a
        flattened block keeps them once per folded position.
        """
        parts, start = [], 0
        for block in layout:
            inner, offset = [], 0
            for g in block.groups:
                inner.append(offset + self.kept(g))
                offset += self.groups[g].size
            row = np.concatenate(inner) if inner else np.zeros(0, dtype=int)
            parts.append(start + (np.arange(block.repeat)[:, None] * offset + row).reshape(-1))
            start += offset * block.repeat
        return np.concatenate(parts).astype(int) if parts else np.zeros(0, dtype=int)

    def positions(self, layout: Layout, group: int) -> list[np.ndarray]:
        """Where a group's channels sit in a layout: one index array per occurrence."""
        found, start = [], 0
        for block in layout:
            width = sum(self.groups[g].size for g in block.groups)
            for rep in range(block.repeat):
                offset = start + rep * width
                for g in block.groups:
                    if g == group:
                        found.append(offset + np.arange(self.groups[g].size))
                    offset += self.groups[g].size
            start += width * block.repeat
        return found

    def input_rows(self, name: str) -> np.ndarray:
        """Surviving positions of a single-input layer's input channel axis.

        Raises:
            EdgesmithError: for a layer the plan records no single input of.
        """
        layouts = self.input_layouts.get(name)
        if not layouts or len(layouts) != 1:
            raise EdgesmithError(f"layer {name} has no single input to slice")
        return self.indices(layouts[0])


class _Spaces:
    """Union-find over channel groups."""

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
        ga.members += [m for m in gb.members if m not in ga.members]
        ga.consumers += gb.consumers
        ga.fixed = ga.fixed or gb.fixed
        gb.producers, gb.members, gb.consumers = [], [], []
        gb.fixed = f"merged into {ga.name}"
        return a


def kind_of(layer: keras.layers.Layer) -> str | None:
    """The Keras class name of a built-in layer; None for anything else (custom classes).

    A user's subclass that happens to be called ``Conv2D`` must not be taken for Keras' own.
    """
    cls = type(layer)
    if cls.__module__.startswith(("tf_keras.", "keras.")):
        return cls.__name__
    return None


def is_nested_model(layer: keras.layers.Layer) -> bool:
    """A Keras model used as a layer of another."""
    return isinstance(layer, keras.Model)


def _nodes(model: keras.Model) -> list:
    """The model's own call nodes, producers before consumers."""
    by_depth = model._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]


def _last_dim(tensor) -> int | None:
    shape = tensor.shape
    if shape.rank is None or shape.rank == 0 or shape[-1] is None:
        return None
    return int(shape[-1])


def _rank(tensor) -> int | None:
    return tensor.shape.rank


def _elementwise(activation) -> bool:
    return getattr(activation, "__name__", None) in ELEMENTWISE_ACTIVATIONS


def _is_symbolic(value) -> bool:
    """A Keras graph tensor (``keras.backend.is_keras_tensor`` raises on anything else)."""
    return hasattr(value, "_keras_history")


def _plain_number(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


# ----------------------------------------------------------------------------------------------
# Flattening nested models


def flatten(model: keras.Model) -> tuple[keras.Model, list[str], dict[str, str]]:
    """Lift the layers of nested Sequential/functional models into one functional graph.

    Every layer is re-created from its config (the class is at hand, so custom layers need no
    registration) and given the original weights; a nested call's ``training`` argument is
    passed on to the lifted layers, so a frozen backbone called with ``training=False`` stays
    in inference mode. Inner names that clash with outer ones get the nested model's name as a
    prefix.

    Returns:
        ``(model, flattened, kept)``: the flat model (the same object when nothing is nested),
        the names of the nested models lifted, and ``{nested model: why it was kept whole}``
        when lifting failed (the original model is then returned unchanged).
    """
    nested = [layer for layer in model.layers if is_nested_model(layer)]
    opaque = {
        layer.name: "a subclassed model: its graph cannot be read"
        for layer in nested
        if not _readable(layer)
    }
    if len(opaque) == len(nested):
        return model, [], opaque
    lifter = _Lifter({layer.name for layer in model.layers})
    try:
        inputs = [
            keras.Input(batch_shape=tuple(t.shape), dtype=t.dtype, name=t._keras_history.layer.name)
            for t in model.inputs
        ]
        outputs = lifter.replay(model, inputs, prefix=None, training=None)
        outputs = outputs[0] if len(outputs) == 1 else outputs
        flat = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name=model.name)
    except (TypeError, ValueError, KeyError, NotImplementedError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = f"could not be flattened ({type(exc).__name__}: {first})"
        return model, [], {layer.name: reason for layer in nested}
    return flat, lifter.lifted, {**opaque, **lifter.opaque}


def _readable(layer) -> bool:
    """A nested model whose layers can be lifted: functional, or a Sequential."""
    return bool(getattr(layer, "_is_graph_network", False)) or isinstance(layer, keras.Sequential)


class _Lifter:
    """Replays a model's graph with fresh copies of its layers, opening nested models."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)
        self.copies: dict[int, keras.layers.Layer] = {}
        self.lifted: list[str] = []
        self.opaque: dict[str, str] = {}

    def _copy(self, layer, prefix: str | None):
        if id(layer) in self.copies:
            return self.copies[id(layer)]
        config = layer.get_config()
        name = layer.name
        if prefix is not None:
            name = f"{prefix}_{name}" if name in self.taken else name
            base, count = name, 1
            while name in self.taken:
                name, count = f"{base}_{count}", count + 1
        self.taken.add(name)
        config["name"] = name
        copy = type(layer).from_config(config)
        self.copies[id(layer)] = copy
        return copy

    def replay(self, model, inputs: list, prefix: str | None, training) -> list:
        if not getattr(model, "_is_graph_network", False):  # a Sequential without an Input
            if len(inputs) != 1:
                raise ValueError(f"Sequential {model.name} called on {len(inputs)} inputs")
            x = inputs[0]
            for layer in model.layers:
                x = self._call(layer, (x,), {}, prefix, training)
            return [x]
        if len(inputs) != len(model.inputs):
            raise ValueError(f"{model.name} takes {len(model.inputs)} inputs, got {len(inputs)}")
        tensors = {id(old): new for old, new in zip(model.inputs, inputs, strict=True)}

        def mapped(value):
            return tensors.get(id(value), value) if _is_symbolic(value) else value

        for node in _nodes(model):
            if node.is_input:
                continue
            args = tf.nest.map_structure(mapped, node.call_args)
            kwargs = tf.nest.map_structure(mapped, node.call_kwargs)
            outputs = self._call(node.layer, args, kwargs, prefix, training)
            for old, new in zip(
                tf.nest.flatten(node.outputs), tf.nest.flatten(outputs), strict=True
            ):
                tensors[id(old)] = new
        return [tensors[id(t)] for t in model.outputs]

    def _call(self, layer, args, kwargs, prefix, training):
        kwargs = dict(kwargs)
        if kwargs.get("training") is None and training is not None:
            kwargs["training"] = training
        if is_nested_model(layer) and not _readable(layer):
            # copied whole; if it is renamed, the reason must follow the new name
            self.opaque[self._copy(layer, prefix).name] = (
                "a subclassed model: its graph cannot be read"
            )
        elif is_nested_model(layer):
            inner = kwargs.pop("training", None)
            if kwargs:
                raise ValueError(f"nested model {layer.name} called with {sorted(kwargs)}")
            if layer.name not in self.lifted:
                self.lifted.append(layer.name)
            outputs = self.replay(layer, tf.nest.flatten(args[0]), layer.name, inner)
            return outputs[0] if len(outputs) == 1 else outputs
        copy = self._copy(layer, prefix)
        if not getattr(copy, "_expects_training_arg", False):
            kwargs.pop("training", None)
        first_call = not copy.built
        outputs = copy(*args, **kwargs)
        if first_call and layer.weights:
            copy.set_weights(layer.get_weights())
        return outputs


# ----------------------------------------------------------------------------------------------
# Analysis


def analyse(model: keras.Model) -> ChannelPlan:
    """Find the channel groups of a Sequential or functional model.

    Nested models are flattened first (the plan's ``model`` is then the flat copy, which
    :func:`edgesmith.compress.channel_pruning.rebuild` slices).

    Raises:
        EdgesmithError: for a subclassed model (its graph cannot be read).
    """
    if not isinstance(model, keras.Sequential) and not getattr(model, "_is_graph_network", False):
        raise EdgesmithError(
            f"model {model.name!r} is a subclassed {type(model).__name__}: channel pruning reads "
            "the layer graph, which only Sequential and functional models have (rebuild it with "
            "keras.Input and layer calls)"
        )
    if not getattr(model, "_is_graph_network", False):
        raise EdgesmithError(
            f"model {model.name!r} is a Sequential without a known input shape; build it with "
            "keras.Input(...) as its first layer"
        )
    source, flattened, kept = flatten(model)
    graph = _Graph(source, kept)
    for node in _nodes(source):
        graph.visit(node)
    for output in source.outputs:
        graph.fix([graph.layout_of[id(output)]], "model output")
    return graph.plan(None if source is model else source, flattened)


class _Graph:
    """Walks a model's nodes once, building channel groups and layouts."""

    def __init__(self, model: keras.Model, kept: dict[str, str]):
        self.spaces = _Spaces()
        self.layout_of: dict[int, Layout] = {}
        self.layouts: dict[str, Layout] = {}
        self.input_layouts: dict[str, list[Layout]] = {}
        self.whole: dict[str, str] = {}
        self.kept_models = kept
        self.outputs = {id(t) for t in model.outputs}
        self.calls: dict[int, int] = {}
        for node in _nodes(model):
            self.calls[id(node.layer)] = self.calls.get(id(node.layer), 0) + 1

    # -- small helpers

    def size(self, g: int) -> int:
        return self.spaces.groups[self.spaces.find(g)].size

    def width(self, layout: Layout) -> int:
        return sum(sum(self.size(g) for g in b.groups) * b.repeat for b in layout)

    def shape_of(self, layout: Layout) -> list[tuple[tuple[int, ...], int]]:
        return [(tuple(self.size(g) for g in b.groups), b.repeat) for b in layout]

    def new(self, tensor, fixed: str | None = None) -> Layout:
        size = _last_dim(tensor)
        if size is None:
            return (Block((self.spaces.new(0, fixed=fixed or "unknown channel count"),)),)
        return (Block((self.spaces.new(size, fixed=fixed),)),)

    def fix(self, layouts: list[Layout], reason: str) -> None:
        for layout in layouts:
            for block in layout:
                for g in block.groups:
                    group = self.spaces.groups[self.spaces.find(g)]
                    group.fixed = group.fixed or reason

    # -- one node

    def visit(self, node) -> None:
        layer = node.layer
        outputs = tf.nest.flatten(node.outputs)
        if node.is_input or not node.keras_inputs:
            for t in outputs:
                self.layout_of[id(t)] = self.new(t, fixed="model input")
            return
        ins = [self.layout_of[id(t)] for t in node.keras_inputs]
        kind = kind_of(layer)
        if self.calls[id(layer)] > 1:
            result = f"{layer.name} ({type(layer).__name__}) is called more than once"
        else:
            result = self.rule(layer, kind, node, ins, outputs)
        if isinstance(result, str):
            self.fix(ins, result)
            if layer.weights:
                self.whole[layer.name] = result
            for t in outputs:
                self.layout_of[id(t)] = self.new(t, fixed=result)
            return
        self.layout_of[id(outputs[0])] = result
        self.layouts[layer.name] = result
        self.input_layouts[layer.name] = ins

    def rule(self, layer, kind, node, ins, outputs) -> Layout | str:
        """The output layout of a single-call layer, or why its groups must stay whole."""
        name = f"{layer.name} ({type(layer).__name__})"
        if is_nested_model(layer):
            why = self.kept_models.get(layer.name, "not flattened")
            return f"nested model {name} kept whole: {why}"
        if len(outputs) != 1:
            return f"{name} has {len(outputs)} outputs"
        out = outputs[0]
        out_dim = _last_dim(out)
        if out_dim is None:
            return f"{name} has no known channel count"
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            return f"{name} is channels_first"
        if kind in MERGES or kind == "Concatenate":
            return self.merge(name, kind, layer, node, ins, out)
        if kind == "TFOpLambda":
            return self.tf_op(name, layer, node, ins, out)
        if len(ins) != 1:
            return f"{name} is not channel-transparent"
        one = ins[0]
        in_dim = _last_dim(node.keras_inputs[0])
        if kind in PRODUCERS:
            return self.producer(name, layer, one, in_dim, out)
        if kind == "Flatten":
            return self.flatten_rule(name, one, node.keras_inputs[0])
        if kind == "Reshape":
            return self.reshape_rule(name, one, in_dim, out_dim)
        if kind in PER_CHANNEL or kind in PASS_THROUGH:
            if in_dim != out_dim:
                return f"{name} changes the channel count"
            why = self.per_channel_problem(layer, kind, node.keras_inputs[0])
            if why:
                return f"{name} {why}"
            if kind in PER_CHANNEL and self.has_channel_weights(layer, kind, out_dim):
                for block in one:
                    for g in block.groups:
                        members = self.spaces.groups[self.spaces.find(g)].members
                        if layer.name not in members:
                            members.append(layer.name)
            return one
        return f"{name} is not channel-transparent"

    def producer(self, name, layer, one, in_dim, out) -> Layout | str:
        if getattr(layer, "groups", 1) != 1:
            return f"{name} is a grouped convolution"
        if in_dim is None or in_dim != self.width(one):
            return f"{name} reads an input of unknown channel count"
        for block in one:
            for g in block.groups:
                self.spaces.groups[self.spaces.find(g)].consumers.append((layer.name, block.repeat))
        layout = self.new(out)
        self.spaces.groups[layout[0].groups[0]].producers.append(layer.name)
        if id(out) not in self.outputs and not _elementwise(getattr(layer, "activation", None)):
            act = getattr(layer.activation, "__name__", type(layer.activation).__name__)
            self.fix([layout], f"{name} applies the {act} activation across channels")
        return layout

    def per_channel_problem(self, layer, kind, tensor) -> str | None:
        rank = _rank(tensor)
        if kind == "BatchNormalization":
            axes = list(np.atleast_1d(layer.axis))
            if len(axes) != 1 or axes[0] not in (-1, (rank or 0) - 1):
                return f"normalises over axis {axes}, not the channel axis"
        elif kind == "Normalization":
            axes = list(layer.axis) if layer.axis is not None else []
            if len(axes) != 1 or axes[0] not in (-1, (rank or 0) - 1):
                return f"normalises over axis {axes}, not the channel axis"
            if layer.input_mean is not None or layer.input_variance is not None:
                return "holds its mean and variance in its config"
        elif kind.startswith("DepthwiseConv") and getattr(layer, "depth_multiplier", 1) != 1:
            return f"has depth_multiplier {layer.depth_multiplier}"
        elif kind == "PReLU" and (rank or 0) - 1 in (layer.shared_axes or []):
            return None  # one alpha shared by all channels: nothing to slice
        elif kind == "Activation" and not _elementwise(layer.activation):
            act = getattr(layer.activation, "__name__", type(layer.activation).__name__)
            return f"applies {act} across channels"
        elif kind in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"):
            noise = getattr(layer, "noise_shape", None)
            if noise is not None and noise[-1] not in (None, 1):
                return f"has noise_shape {tuple(noise)} with a fixed channel count"
        elif kind == "Rescaling" and (np.ndim(layer.scale) or np.ndim(layer.offset)):
            return "scales channels by a per-channel list"
        return None

    @staticmethod
    def has_channel_weights(layer, kind, channels) -> bool:
        if kind == "PReLU":
            return layer.alpha.shape[-1] == channels and channels > 1
        return bool(layer.weights)

    def flatten_rule(self, name, one, tensor) -> Layout | str:
        rank = _rank(tensor)
        if rank is None:
            return f"{name} flattens an input of unknown rank"
        if rank <= 2:
            return one
        dims = tuple(tensor.shape)[1:-1]
        if any(d is None for d in dims):
            return f"{name} flattens an input of unknown spatial size"
        positions = int(np.prod(dims))
        if positions == 1:
            return one
        if len(one) != 1:
            return f"{name} flattens a concatenation of flattened parts"
        return (Block(one[0].groups, one[0].repeat * positions),)

    def reshape_rule(self, name, one, in_dim, out_dim) -> Layout | str:
        if in_dim == out_dim:
            return one
        if len(one) == 1:
            period = sum(self.size(g) for g in one[0].groups)
            if period and out_dim % period == 0:
                return (Block(one[0].groups, out_dim // period),)
        return f"{name} moves channels off the last axis"

    def merge(self, name, kind, layer, node, ins, out) -> Layout | str:
        rank = _rank(out)
        out_dim = _last_dim(out)
        if kind == "Concatenate" and layer.axis in (-1, (rank or 0) - 1):
            dims = [_last_dim(t) for t in node.keras_inputs]
            if any(d is None for d in dims) or sum(dims) != out_dim:
                return f"{name} joins inputs of unknown channel count"
            blocks: list[Block] = []
            for layout in ins:
                for block in layout:
                    if blocks and blocks[-1].repeat == 1 and block.repeat == 1:
                        blocks[-1] = Block(blocks[-1].groups + block.groups, 1)
                    else:
                        blocks.append(block)
            return tuple(blocks)
        return self.tie(name, node.keras_inputs, ins, out_dim)

    def tie(self, name, tensors, ins, out_dim) -> Layout | str:
        """Element-wise inputs share channels; a one-channel input is broadcast, not tied."""
        full = [layout for t, layout in zip(tensors, ins, strict=True) if _last_dim(t) == out_dim]
        if not full or any(_last_dim(t) not in (out_dim, 1) for t in tensors):
            return f"{name} combines inputs of different channel counts"
        shape = self.shape_of(full[0])
        if any(self.shape_of(layout) != shape for layout in full[1:]):
            return f"{name} combines inputs split into channel groups differently"
        for layout in full[1:]:
            for a_block, b_block in zip(full[0], layout, strict=True):
                for a, b in zip(a_block.groups, b_block.groups, strict=True):
                    self.spaces.union(a, b)
        return full[0]

    def tf_op(self, name, layer, node, ins, out) -> Layout | str:
        symbol = getattr(layer, "symbol", None)
        extras = [
            value
            for value in tf.nest.flatten((node.call_args, node.call_kwargs))
            if not _is_symbolic(value)
        ]
        if not all(_plain_number(value) for value in extras):
            return f"{name} ({symbol}) takes a non-scalar constant"
        if symbol in TF_OPS_BINARY or (symbol in TF_OPS_UNARY and len(ins) == 1):
            return self.tie(f"{name} ({symbol})", node.keras_inputs, ins, _last_dim(out))
        return f"{name} ({symbol}) is not channel-transparent"

    # -- result

    def plan(self, model: keras.Model | None, flattened: list[str]) -> ChannelPlan:
        find = self.spaces.find

        def resolve(layout: Layout) -> Layout:
            return tuple(Block(tuple(find(g) for g in b.groups), b.repeat) for b in layout)

        layouts = {name: resolve(layout) for name, layout in self.layouts.items()}
        inputs = {name: [resolve(x) for x in ins] for name, ins in self.input_layouts.items()}
        space_of = {
            name: layout[0].groups[0]
            for name, layout in layouts.items()
            if len(layout) == 1 and len(layout[0].groups) == 1
        }
        input_space = {
            name: ins[0][0].groups[0]
            for name, ins in inputs.items()
            if ins and len(ins[0]) == 1 and len(ins[0][0].groups) == 1
        }
        return ChannelPlan(
            self.spaces.groups,
            space_of,
            input_space,
            layouts=layouts,
            input_layouts=inputs,
            whole=dict(self.whole),
            model=model,
            flattened=list(flattened),
        )
