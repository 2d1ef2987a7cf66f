"""The model zoo: small edge CNNs for any input shape and class count, in tf_keras or Keras 3.

One definition serves both trainers: every builder takes the ``keras`` module to build with
(tf_keras, the default, for the tf_keras path; Keras 3 for ``--backend jax|torch|tensorflow``), and
the two APIs agree on every layer used here. tf_keras is imported only when no module is given, so
the Keras 3 path never loads TensorFlow.

Every model ends in a ``Dense`` named ``logits`` followed by a ``softmax`` activation, so the
exported files give probabilities and distillation can reach the logits by layer name. BatchNorm
momentum is 0.9: with Keras' 0.99 a short run leaves moving statistics that give chance-level
inference accuracy (measured here).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from edgesmith.core.errors import EdgesmithError

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

Model = Any  # a tf_keras or Keras 3 Model


def _keras(keras: ModuleType | None) -> ModuleType:
    """The module to build with: the one given, else tf_keras (which loads TensorFlow)."""
    if keras is not None:
        return keras
    from edgesmith.tfkeras.backend import keras as tf_keras

    return tf_keras


def _bn(keras: ModuleType, name: str):
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def _head(keras: ModuleType, x, num_classes: int):
    x = keras.layers.Dense(num_classes, name="logits")(x)
    # float32 even under a mixed-precision policy: softmax in float16 loses small probabilities
    return keras.layers.Activation("softmax", dtype="float32", name="softmax")(x)


def seed_cnn(
    input_shape: tuple[int, int, int], num_classes: int, *, keras: ModuleType | None = None
) -> Model:
    """The seed article's CIFAR-10 CNN: 3 convs (32, 64, 64), 2 max-pools, Dense 64.

    Its convs are 'valid' as in the article (122,570 params at 32x32x3); inputs too small for
    that (the 8x8 digits) get 'same' padding so the last feature map keeps at least 1x1.
    """
    keras = _keras(keras)
    layers = keras.layers
    side = min(input_shape[:2])
    fits_valid = (((side - 2) // 2 - 2) // 2 - 2) >= 1
    padding = "valid" if fits_valid else "same"
    inputs = keras.Input(input_shape, name="input")
    x = layers.Conv2D(32, 3, padding=padding, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, padding=padding, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(64, 3, padding=padding, activation="relu", name="conv3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="fc1")(x)
    return keras.Model(inputs, _head(keras, x, num_classes), name="seed_cnn")


def _residual_block(
    keras: ModuleType, x, inner: int, filters: int, stride: int, name: str, *, use_bias: bool
):
    """conv-bn-relu (``inner`` filters), conv-bn (``filters``), plus the shortcut, then relu.

    The shortcut is a 1x1 conv where the shape changes, else the identity (then ``filters``
    must be the input's width: the group the block's input belongs to).
    """
    layers = keras.layers
    y = layers.Conv2D(
        inner, 3, strides=stride, padding="same", use_bias=use_bias, name=f"{name}_conv1"
    )(x)
    y = _bn(keras, f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=use_bias, name=f"{name}_conv2")(y)
    y = _bn(keras, f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        x = layers.Conv2D(filters, 1, strides=stride, use_bias=use_bias, name=f"{name}_shortcut")(x)
    x = layers.Add(name=f"{name}_add")([x, y])
    return layers.Activation("relu", name=f"{name}_relu2")(x)


STAGE_WIDTHS = (16, 32, 64)
"""The CIFAR ResNets' filters per stage (the stem's are the first stage's)."""


def _resnet_groups(blocks: int) -> list[tuple[list[str], int]]:
    """The ResNet's channel groups: the conv layers whose outputs must share a width, with it.

    A residual ``Add`` ties a block's ``_conv2`` to its shortcut: the stem's group runs through
    stage 1 (identity shortcuts), each later stage's group starts at its first ``_shortcut``.
    Each ``_conv1`` is a group of its own (the block's inner width).
    """

    def conv2s(stage: int) -> list[str]:
        return [f"stage{stage}_block{b + 1}_conv2" for b in range(blocks)]

    stages = list(enumerate(STAGE_WIDTHS, start=1))
    groups = [(["stem_conv", *conv2s(1)], STAGE_WIDTHS[0])]
    groups += [([f"stage{s}_block1_shortcut", *conv2s(s)], width) for s, width in stages[1:]]
    for stage, width in stages:
        groups += [([f"stage{stage}_block{b + 1}_conv1"], width) for b in range(blocks)]
    return groups


def resolve_widths(model: str, widths: dict[str, int]) -> dict[str, int]:
    """Every conv's filters for zoo ResNet ``model`` at ``widths`` (no Keras needed).

    Raises:
        EdgesmithError: for a name in no channel group of that ResNet, or two counts for one.
    """
    return _resolve_widths(RESNETS[model]["blocks"], widths)


def _resolve_widths(blocks: int, widths: dict[str, int]) -> dict[str, int]:
    """Every conv's filters, from ``widths`` keyed by any layer of a group (as channel pruning's).

    Raises:
        EdgesmithError: for a name in no group, or two counts for one group.
    """
    filters: dict[str, int] = {}
    for names, default in _resnet_groups(blocks):
        given = {widths[name] for name in names if name in widths}
        if len(given) > 1:
            raise EdgesmithError(
                f"widths gives the group of {names[0]} two counts: "
                f"{' and '.join(str(count) for count in sorted(given))}"
            )
        filters.update(dict.fromkeys(names, given.pop() if given else default))
    unknown = sorted(set(widths) - set(filters))
    if unknown:
        leaders = [names[0] for names, _ in _resnet_groups(blocks)]
        raise EdgesmithError(
            f"widths names {', '.join(unknown)}, which is in no channel group of this ResNet: "
            f"expected some of {', '.join(leaders)} (or another conv of a residual group)"
        )
    return filters


def _resnet(
    keras: ModuleType,
    input_shape,
    num_classes,
    *,
    blocks: int,
    use_bias: bool,
    widths: dict[str, int] | None = None,
) -> Model:
    """The CIFAR ResNet of ``blocks`` residual blocks per stage: ``resnet{6 * blocks + 2}``.

    Three stages of 16, 32 and 64 filters, each but the first halving the resolution.
    ``widths`` sets some channel groups' filters (see :func:`_resnet_groups`), named as
    ``compress prune --structure channels --widths`` names them, so the same map gives the
    same thin network either way.
    """
    filters = _resolve_widths(blocks, widths or {})
    layers = keras.layers
    inputs = keras.Input(input_shape, name="input")
    x = layers.Conv2D(filters["stem_conv"], 3, padding="same", use_bias=use_bias, name="stem_conv")(
        inputs
    )
    x = _bn(keras, "stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage in range(len(STAGE_WIDTHS)):
        for block in range(blocks):
            name = f"stage{stage + 1}_block{block + 1}"
            stride = 2 if stage > 0 and block == 0 else 1
            x = _residual_block(
                keras,
                x,
                filters[f"{name}_conv1"],
                filters[f"{name}_conv2"],
                stride,
                name,
                use_bias=use_bias,
            )
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, _head(keras, x, num_classes), name=f"resnet{6 * blocks + 2}")


RESNETS = {"resnet8": {"blocks": 1, "use_bias": True}, "resnet20": {"blocks": 3, "use_bias": False}}
"""The zoo's ResNets as :func:`_resnet` settings (``build_model`` gives them ``widths``)."""


def resnet8(
    input_shape: tuple[int, int, int], num_classes: int, *, keras: ModuleType | None = None
) -> Model:
    """MLPerf Tiny's image-classification ResNet-8: 16/32/64 filters, 78,666 params on CIFAR-10.

    Convs keep their biases as in the reference model, so parameter counts match it.
    """
    return _resnet(_keras(keras), input_shape, num_classes, **RESNETS["resnet8"])


def resnet20(
    input_shape: tuple[int, int, int], num_classes: int, *, keras: ModuleType | None = None
) -> Model:
    """He et al.'s CIFAR ResNet-20 (3 blocks a stage, 16/32/64, 0.27 M params): a teacher."""
    return _resnet(_keras(keras), input_shape, num_classes, **RESNETS["resnet20"])


def dscnn(
    input_shape: tuple[int, int, int], num_classes: int, *, keras: ModuleType | None = None
) -> Model:
    """A depthwise-separable CNN (MobileNet's building block): conv stem then 5 DS blocks."""
    keras = _keras(keras)
    layers = keras.layers
    inputs = keras.Input(input_shape, name="input")
    x = layers.Conv2D(32, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _bn(keras, "stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for index, (filters, stride) in enumerate(((64, 1), (128, 2), (128, 1), (256, 2), (256, 1))):
        name = f"ds{index + 1}"
        x = layers.DepthwiseConv2D(
            3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw"
        )(x)
        x = _bn(keras, f"{name}_dw_bn")(x)
        x = layers.Activation("relu", name=f"{name}_dw_relu")(x)
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
        x = _bn(keras, f"{name}_pw_bn")(x)
        x = layers.Activation("relu", name=f"{name}_pw_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, _head(keras, x, num_classes), name="dscnn")


ZOO: dict[str, Callable[..., Model]] = {  # keys: MODEL_NAMES
    "seed_cnn": seed_cnn,
    "resnet8": resnet8,
    "resnet20": resnet20,
    "dscnn": dscnn,
}


def build_model(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    keras: ModuleType | None = None,
    widths: dict[str, int] | None = None,
) -> Model:
    """Build a zoo model by name, with ``keras`` (a Keras 3 module) or tf_keras by default.

    ``widths``: channel counts for the ResNets' group-leading layers (see :func:`_resnet`).

    Raises:
        EdgesmithError: for a name not in the zoo (the valid names are listed), or widths for
            a model that takes none.
    """
    if name not in ZOO:
        raise EdgesmithError(
            f"unknown model {name!r}: expected one of {', '.join(ZOO)} "
            "or the path of a Keras model file"
        )
    if not widths:
        return ZOO[name](tuple(input_shape), int(num_classes), keras=keras)
    if name not in RESNETS:
        raise EdgesmithError(
            f"widths resize the zoo's ResNets ({', '.join(RESNETS)}), not {name!r}"
        )
    shape, classes = tuple(input_shape), int(num_classes)
    return _resnet(_keras(keras), shape, classes, widths=widths, **RESNETS[name])
