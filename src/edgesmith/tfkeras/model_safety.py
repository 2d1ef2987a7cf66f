"""Decide, before any deserialisation, whether loading a Keras model file would run its code.

tf_keras honours ``safe_mode`` only for a real ``.keras`` zip: an ``.h5`` file, a SavedModel, or an
HDF5 file renamed ``x.keras`` runs the Python bytecode stored in it (a ``Lambda`` layer, an RNN cell
wrapper's ``residual_fn``...), and a config may name any module for Keras to import. So edgesmith
reads the model's *config* itself (the HDF5 ``model_config`` attribute, or the zip's
``config.json``), with the file's real type taken from its magic bytes rather than its suffix, and
accepts it by ALLOWLIST: every dict and list in the config, at any depth, is walked, and every
serialised object (``class_name``, ``module``, ``registered_name``) must be one of the Keras
built-ins listed below, known to rebuild from numbers, strings and other listed built-ins only.
Anything else (an unknown or custom class, a module outside Keras, a serialised callable, a field
holding marshalled bytecode) is refused by default, with the path of the offending entry inside the
config. The user accepts such a file explicitly with ``--trust-model`` (API: ``trust_model=True``,
or the :func:`trusting_model_code` scope for calls that do not take the argument).

This module imports no TensorFlow (h5py only, on use), so commands check their inputs in
milliseconds, before TensorFlow loads.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import dataclasses
import functools
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgesmith.core.errors import EdgesmithError

TRUST_FLAG = "--trust-model"
ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
MAX_CONFIG_BYTES = 64 << 20
"""A model config larger than this (64 MiB) is refused rather than read (a zip bomb)."""
MAX_DEPTH = 200
"""A config nested deeper than this is refused rather than walked."""
SAFE_MODULES = ("keras", "tf_keras", "tensorflow_model_optimization")
"""Config ``module`` values (and their sub-modules) a Keras 2 file may name: Keras' own, and tfmot's
(QAT models hold its quantisation wrappers and activations). Importing one runs only installed,
trusted code; what is then looked up in it is the allowlisted class name."""
KERAS3_MODULES = ("keras",)
"""The ``module`` values a Keras 3 file may name: ``keras`` and its sub-modules only."""
SAFE_TF_OPS = (
    "__operators__.",
    "math.",
    "nn.",
    "linalg.",
    "image.resize",
    "reshape",
    "concat",
    "transpose",
    "stack",
    "expand_dims",
    "squeeze",
    "cast",
    "identity",
    "clip_by_value",
    "split",
    "compat.v1.squeeze",
    "compat.v1.transpose",
)
"""TensorFlow functions a ``TFOpLambda`` layer may call: arithmetic and shape ops, no I/O."""

# ----------------------------------------------------------------------------------------------
# The allowlist. Keras rebuilds a serialised object by looking its ``class_name`` up (among its
# built-ins, in the named ``module``, or under ``registered_name``) and calling ``from_config``
# with the rest. A class whose constructor takes only numbers, strings, shapes and other listed
# objects cannot run code from the file, whatever values the file gives it; a class that takes a
# *callable* rebuilds that callable from the file (marshalled bytecode, or a function looked up by
# name), so it is either absent here or its function fields are refused (see CODE_KEYS).

MODEL_CLASSES = ("Functional", "Sequential", "Model")
"""Containers: their configs list layers and how they connect, each entry checked in turn."""

LAYER_CLASSES = frozenset(
    {
        # Core, convolution, pooling, normalisation, merging, reshaping, activation, noise and
        # attention layers: tensors in, tensors out, configured by numbers, strings, shapes and
        # nested initializers/regularizers/constraints/activations (each checked below).
        *("InputLayer", "Dense", "EinsumDense", "Activation", "Embedding", "Masking", "Identity"),
        *("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"),
        *("Convolution1D", "Convolution2D", "Convolution3D"),
        *("Convolution1DTranspose", "Convolution2DTranspose", "Convolution3DTranspose"),
        *("SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D"),
        *("DepthwiseConv1D", "DepthwiseConv2D", "LocallyConnected1D", "LocallyConnected2D"),
        *("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D"),
        *("AveragePooling1D", "AveragePooling2D", "AveragePooling3D"),
        *("AvgPool1D", "AvgPool2D", "AvgPool3D"),
        *("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"),
        *("GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D"),
        *("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D"),
        *("GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D"),
        *("AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D"),
        *("AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D"),
        *("BatchNormalization", "SyncBatchNormalization", "LayerNormalization"),
        *("GroupNormalization", "UnitNormalization", "RMSNormalization"),
        *("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"),
        *("Flatten", "Reshape", "Permute", "RepeatVector"),
        *("Cropping1D", "Cropping2D", "Cropping3D", "ZeroPadding1D", "ZeroPadding2D"),
        *("ZeroPadding3D", "UpSampling1D", "UpSampling2D", "UpSampling3D"),
        *("ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU"),
        *("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout"),
        *("GaussianDropout", "GaussianNoise", "ActivityRegularization"),
        *("Attention", "AdditiveAttention", "MultiHeadAttention", "GroupQueryAttention"),
        # Numeric and image preprocessing: fixed arithmetic on pixels and numbers. (Absent: the
        # string lookups and TextVectorization, which read vocabulary files and take callables.)
        *("Rescaling", "Normalization", "Resizing", "CenterCrop", "RandomCrop", "RandomFlip"),
        *("RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast"),
        *("RandomBrightness", "RandomHeight", "RandomWidth"),
        *("Discretization", "CategoryEncoding", "Hashing", "HashedCrossing"),
    }
)
"""Built-in layers. Deliberately absent: ``Lambda`` (bytecode), ``TFSMLayer`` (loads a
SavedModel), ``JaxLayer``/``FlaxLayer`` (call functions), ``TorchModuleWrapper`` (a pickle),
``DenseFeatures`` (feature columns), tf_keras' ``ClassMethod``/``InstanceMethod``/
``InstanceProperty`` (call a method named by the file), and the ``Layer``/``Wrapper`` bases."""

WRAPPER_CLASSES = frozenset({"Bidirectional", "TimeDistributed", "SpectralNormalization"})
"""Layer wrappers: their only non-numeric field is the wrapped layer, itself checked."""

RNN_CLASSES = frozenset(
    {
        *("RNN", "SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"),
        *("SimpleRNNCell", "LSTMCell", "GRUCell", "PeepholeLSTMCell", "StackedRNNCells"),
    }
)
"""Recurrent layers and cells: an ``RNN``'s ``cell`` (or ``StackedRNNCells``' ``cells``) is a
nested object, itself checked; the cells' activations are checked as activations."""

CELL_WRAPPER_CLASSES = frozenset({"DropoutWrapper", "ResidualWrapper", "DeviceWrapper"})
"""tf_keras' RNN cell wrappers. Safe only *without* their function fields: ``residual_fn`` and
``dropout_fn`` (with ``*_fn_type``/``*_fn_module``) hold a marshalled lambda or a function name,
which tf_keras' ``.h5`` loader rebuilds and calls whatever ``safe_mode`` says; those fields are
refused as code wherever they appear (CODE_KEYS)."""

INITIALIZER_NAMES = frozenset(
    {
        *("Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity"),
        *("LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform"),
        *("TruncatedNormal", "VarianceScaling", "Zeros", "IdentityInitializer"),
        *("OrthogonalInitializer", "STFT", "STFTInitializer"),
        *("constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "identity"),
        *("lecun_normal", "lecun_uniform", "ones", "orthogonal", "random_normal"),
        *("random_uniform", "truncated_normal", "variance_scaling", "zeros", "stft"),
    }
)
"""Initializers (classes, and the names a ``*_initializer`` string may give): numbers in, a tensor
of random or constant values out."""

REGULARIZER_NAMES = frozenset(
    {"L1", "L2", "L1L2", "OrthogonalRegularizer", "l1", "l2", "l1_l2", "orthogonal_regularizer"}
)
"""Regularizers: a penalty computed from a weight and a few factors."""

CONSTRAINT_NAMES = frozenset(
    {
        *("MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "RadialConstraint"),
        *("max_norm", "min_max_norm", "non_neg", "unit_norm", "radial_constraint"),
    }
)
"""Weight constraints: a clip or a norm applied to a weight, configured by numbers."""

ACTIVATION_NAMES = frozenset(
    {
        *("linear", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "glu"),
        *("sigmoid", "hard_sigmoid", "log_sigmoid", "sparse_sigmoid", "tanh", "hard_tanh"),
        *("softmax", "log_softmax", "sparsemax", "softplus", "softsign", "sparse_plus"),
        *("swish", "silu", "hard_silu", "hard_swish", "mish", "exponential", "squareplus"),
        *("hard_shrink", "soft_shrink", "tanh_shrink", "threshold"),
    }
)
"""Keras' activation functions, by the name a config gives them: elementwise maths. A custom
activation is a function Keras has to find (or rebuild) from the file, so any other name is
refused."""

LOSS_CLASSES = frozenset(
    {
        *("BinaryCrossentropy", "BinaryFocalCrossentropy", "CategoricalCrossentropy"),
        *("CategoricalFocalCrossentropy", "SparseCategoricalCrossentropy", "CategoricalHinge"),
        *("CosineSimilarity", "Hinge", "SquaredHinge", "Huber", "KLDivergence", "LogCosh"),
        *("MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredError"),
        *("MeanSquaredLogarithmicError", "Poisson", "Dice", "Tversky", "Circle", "CTC"),
        "CategoricalGeneralizedCrossEntropy",
    }
)
"""Losses: arithmetic on labels and predictions, configured by numbers and reduction names."""

LOSS_NAMES = frozenset(
    {
        *("binary_crossentropy", "binary_focal_crossentropy", "categorical_crossentropy"),
        *("categorical_focal_crossentropy", "sparse_categorical_crossentropy"),
        *("categorical_hinge", "cosine_similarity", "hinge", "squared_hinge", "huber"),
        *("kl_divergence", "kld", "kullback_leibler_divergence", "log_cosh", "logcosh"),
        *("mean_absolute_error", "mae", "mean_absolute_percentage_error", "mape"),
        *("mean_squared_error", "mse", "mean_squared_logarithmic_error", "msle", "poisson"),
        *("dice", "tversky", "circle", "ctc", "categorical_generalized_cross_entropy"),
    }
)
"""Keras' loss functions, by name (a ``{"class_name": "function"}`` entry may name one)."""

DTYPE_POLICIES = frozenset(
    {
        *("Policy", "DTypePolicy", "FloatDTypePolicy", "QuantizedDTypePolicy"),
        *("QuantizedFloat8DTypePolicy", "Int4DTypePolicy", "DTypePolicyMap"),
    }
)
"""Dtype policies (mixed precision, Keras 3 quantisation modes): names of dtypes."""

DATA_CLASSES = frozenset(
    {"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__slice__", "__ellipsis__"}
)
"""Keras 3's markers for values (a symbolic tensor's shape and history, a constant array, bytes, a
slice): rebuilt as data. (Absent: ``__lambda__``, bytecode; ``__typespec__``, a class by name.)"""

OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")
"""tf_keras' layers for TensorFlow functions called in a functional model: accepted when their
``function`` is one of SAFE_TF_OPS (checked by name)."""

KERAS3_OPS = frozenset(
    {
        *("Abs", "Absolute", "Add", "Subtract", "Multiply", "Divide", "TrueDivide"),
        *("FloorDivide", "DivideNoNan", "Power", "Negative", "Reciprocal", "Square", "Sqrt"),
        *("Exp", "Expm1", "Log", "Log1p", "Log2", "Log10", "Sign", "Round", "Floor", "Ceil"),
        *("Clip", "Maximum", "Minimum", "Mod", "Mean", "Sum", "Prod", "Max", "Min", "Amax"),
        *("Amin", "Std", "Var", "Argmax", "Argmin", "Cumsum", "Cumprod", "All", "Any"),
        *("Equal", "NotEqual", "Greater", "GreaterEqual", "Less", "LessEqual"),
        *("LogicalAnd", "LogicalOr", "LogicalNot", "Where", "Reshape", "Transpose"),
        *("Squeeze", "ExpandDims", "Concatenate", "Stack", "Split", "Tile", "Repeat"),
        *("BroadcastTo", "Flip", "Roll", "Pad", "Take", "TakeAlongAxis", "GetItem"),
        *("Matmul", "Dot", "Einsum", "Tensordot", "Ravel", "Moveaxis", "Swapaxes", "Tanh"),
        *("Sin", "Cos", "ZerosLike", "OnesLike", "Sort", "Argsort", "Hstack", "Vstack"),
        *("Tril", "Triu", "Relu", "Relu6", "Sigmoid", "Softplus", "Softsign", "Silu"),
        *("LeakyRelu", "HardSigmoid", "HardSilu", "Elu", "Selu", "Gelu", "Celu", "Glu"),
        *("Softmax", "LogSoftmax", "MaxPool", "AveragePool", "Conv", "DepthwiseConv"),
        *("SeparableConv", "ConvTranspose", "OneHot", "Moments", "BatchNorm", "Normalize"),
        *("LayerNorm", "RMSNorm", "DepthToSpace", "SpaceToDepth", "Rsqrt", "Erf"),
        *("Logsumexp", "TopK", "Resize", "RGBToGrayscale", "Cast", "Slice", "StopGradient"),
        *("Unstack", "ConvertToTensor", "SaturateCast"),
    }
)
"""Keras 3's operations in a functional graph (``x + y``, ``keras.ops.reshape``): tensor maths
and shapes, from a ``keras.src.ops.*`` module (KERAS3_OP_MODULE). (Absent: the control-flow ops
``Map``, ``Scan``, ``Cond``, ``Switch``, ``WhileLoop``..., which call functions.)"""
KERAS3_OP_MODULE = "keras.src.ops."

TFMOT_CLASSES = frozenset(
    {
        *("QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer", "QuantizeAwareActivation"),
        *("NoOpActivation", "NoOpQuantizeConfig", "Default8BitQuantizeConfig"),
        *("Default8BitConvQuantizeConfig", "Default8BitActivationQuantizeConfig"),
        *("Default8BitOutputQuantizeConfig", "AllValuesQuantizer", "LastValueQuantizer"),
        *("MovingAverageQuantizer", "Default8BitConvWeightsQuantizer"),
    }
)
"""tensorflow-model-optimization's quantisation-aware-training classes (edgesmith's QAT artifacts
hold them; tf_keras finds them only inside tfmot's ``quantize_scope``): a wrapper around a nested
layer, and quantizers and configs made of bit widths, flags and attribute names."""

ALLOWED_CLASSES = frozenset(
    {
        *MODEL_CLASSES,
        *LAYER_CLASSES,
        *WRAPPER_CLASSES,
        *RNN_CLASSES,
        *CELL_WRAPPER_CLASSES,
        *INITIALIZER_NAMES,
        *REGULARIZER_NAMES,
        *CONSTRAINT_NAMES,
        *LOSS_CLASSES,
        *DTYPE_POLICIES,
        *DATA_CLASSES,
        *OP_LAYERS,
        *TFMOT_CLASSES,
    }
)
"""Every ``class_name`` accepted without trust (KERAS3_OPS too, from a ``keras.src.ops`` module)."""

FUNCTION_NAMES = ACTIVATION_NAMES | LOSS_NAMES
"""The functions a ``{"class_name": "function", "config": NAME}`` entry may name (Keras 3 and
tf_keras' new format serialise functions so), from a Keras module or ``builtins`` (which Keras
resolves among its own activations, losses...)."""

STRING_FIELDS: tuple[tuple[str, frozenset[str], str], ...] = (
    ("activation", ACTIVATION_NAMES, "activation"),
    ("_initializer", INITIALIZER_NAMES, "initializer"),
    ("_regularizer", REGULARIZER_NAMES, "regularizer"),
    ("_constraint", CONSTRAINT_NAMES, "constraint"),
)
"""Fields (by the end of their key) whose string value Keras resolves to an object by name: the
name must be a built-in one (a custom activation given as a function is saved by its name)."""

CODE_KEYS = ("function", "fn")
"""Keys (exact, or ``*_fn``/``*_function``) that hold a serialised callable when not null: a
``Lambda``'s ``function``, a cell wrapper's ``residual_fn``/``dropout_fn``... Keras rebuilds them
from marshalled bytecode or looks them up by name, so any value there is code (except the
checked name of a ``TFOpLambda``'s TensorFlow function)."""
CALLABLE_TYPES = ("lambda", "function")
"""Values of a ``*_type`` key (``function_type``, ``residual_fn_type``, ``output_shape_type``...)
that say its sibling field holds a callable."""

_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]{24,}")

_TRUST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "edgesmith_trust_model", default=False
)


@contextlib.contextmanager
def trusting_model_code(enabled: bool = True) -> Iterator[None]:
    """Within the block, loaders called without ``trust_model`` accept code-bearing model files.

    The CLI wraps a command in it when ``--trust-model`` is given; API users may do the same
    around calls that load artifacts (compress techniques, export) instead of passing an argument
    through every layer.
    """
    token = _TRUST.set(bool(enabled))
    try:
        yield
    finally:
        _TRUST.reset(token)


def trusting_handler(handler: Callable[[Any], int]) -> Callable[[Any], int]:
    """Wrap a CLI handler so that its ``args.trust_model`` (``--trust-model``) covers every load.

    Commands reach model files through many layers (a build trains, compresses and exports);
    the scope saves threading the argument through each of them.
    """

    @functools.wraps(handler)
    def run(args: Any) -> int:
        with trusting_model_code(bool(getattr(args, "trust_model", False))):
            return handler(args)

    return run


def model_code_trusted(trust_model: bool | None = None) -> bool:
    """``trust_model`` when given, else whether a :func:`trusting_model_code` block is active."""
    return _TRUST.get() if trust_model is None else bool(trust_model)


@dataclasses.dataclass(frozen=True)
class ModelFileReport:
    """What :func:`inspect_model_file` found.

    Attributes:
        kind: ``hdf5``, ``keras-zip`` or ``savedmodel`` (from the content, not the suffix).
        keras_major: the Keras major version that saved it (2 when it cannot tell).
        reasons: why loading it could run code from the file (empty when everything in its
            config is on the allowlist), each starting with the path inside the config.
        layer_classes: the class names of every layer in the config, nested ones included.
    """

    kind: str
    keras_major: int
    reasons: tuple[str, ...]
    layer_classes: tuple[str, ...]
    unbuilt: bool = False
    """A Sequential saved before it was built: no layer or build record gives its input shape,
    so every stage would fail on it after TensorFlow's import; refused at once instead."""


def file_kind(path: Path) -> str:
    """``savedmodel``, ``keras-zip`` or ``hdf5``, decided by content (magic bytes).

    Raises:
        EdgesmithError: for a missing path, a directory without ``saved_model.pb``, a file that
            is neither HDF5 nor zip, or one that is both (a polyglot whose meaning depends on
            which loader reads it).
    """
    if not path.exists():
        raise EdgesmithError(f"model file not found: {path}")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise EdgesmithError(
            f"{path} is a directory but not a SavedModel (no saved_model.pb); expected a Keras "
            "model file (.keras, .h5) or a SavedModel directory"
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise EdgesmithError(f"cannot read model file {path}: {exc.strerror}") from None
    is_hdf5 = head == HDF5_MAGIC or _hdf5_with_user_block(path)
    if is_zip and is_hdf5:
        raise EdgesmithError(
            f"{path} is both an HDF5 and a zip file; refusing an ambiguous model file"
        )
    if is_hdf5:
        return "hdf5"
    if is_zip and head[:4] == ZIP_MAGIC:
        return "keras-zip"
    raise EdgesmithError(
        f"{path} is neither an HDF5 (.h5) nor a .keras zip file (by its content); expected a "
        "Keras model file or a SavedModel directory"
    )


def _hdf5_with_user_block(path: Path) -> bool:
    """HDF5 allows its signature at 512, 1024, 2048... bytes (after a user block)."""
    offset = 512
    size = path.stat().st_size
    with open(path, "rb") as handle:
        while offset + 8 <= size and offset <= 1 << 20:
            handle.seek(offset)
            if handle.read(8) == HDF5_MAGIC:
                return True
            offset *= 2
    return False


def inspect_model_file(path: str | Path) -> ModelFileReport:
    """Read a model file's config (no deserialisation) and list what would run code on load.

    Raises:
        EdgesmithError: for a file that is not a model file, or a config that cannot be read.
    """
    path = Path(path)
    kind = file_kind(path)
    if kind == "savedmodel":
        reason = (
            "it is a SavedModel directory, whose traced TensorFlow functions run when it is "
            "loaded and called"
        )
        return ModelFileReport(kind, 2, (reason,), ())
    config, version = _read_hdf5(path) if kind == "hdf5" else _read_zip(path)
    major = version.split(".")[0]
    keras_major = int(major) if major.isascii() and major.isdigit() and len(major) <= 3 else 2
    walk = _Walk(KERAS3_MODULES if keras_major >= 3 else SAFE_MODULES)
    if isinstance(config, dict):
        # edgesmith loads with compile=False, so Keras never deserialises the top-level compile
        # config (the optimizer, which may name edgesmith's own learning-rate schedule); a nested
        # model's compile config would be, so it is walked like the rest
        config = {key: value for key, value in config.items() if key != "compile_config"}
    if config is not None:  # None: weights only, nothing to deserialise
        if not (isinstance(config, dict) and isinstance(config.get("class_name"), str)):
            walk.refuse(["model"], "the config is not a serialised Keras object")
        else:
            _walk(config, ["model"], walk)
    return ModelFileReport(
        kind,
        keras_major,
        tuple(dict.fromkeys(walk.reasons)),
        tuple(walk.layers),
        unbuilt=_unbuilt_sequential(config),
    )


SHAPE_KEYS = ("batch_input_shape", "batch_shape", "input_shape")


def _unbuilt_sequential(config: Any) -> bool:
    """True for a Sequential whose config records no input shape anywhere (tf_keras or Keras 3)."""
    if not (isinstance(config, dict) and config.get("class_name") == "Sequential"):
        return False
    inner = config.get("config")
    if not isinstance(inner, dict) or inner.get("build_input_shape") is not None:
        return False
    layers = inner.get("layers")
    if not isinstance(layers, list):
        return False
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("class_name") == "InputLayer":
            return False
        settings = layer.get("config")
        if not isinstance(settings, dict) or any(settings.get(key) for key in SHAPE_KEYS):
            return False
    return True


def _read_hdf5(path: Path) -> tuple[Any, str]:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
            version = handle.attrs.get("keras_version", "2")
    except (OSError, ValueError) as exc:
        raise EdgesmithError(f"cannot read {path} as HDF5: {str(exc).splitlines()[0]}") from None
    version = version.decode() if isinstance(version, bytes) else str(version)
    if raw is None:
        return None, version  # weights only: nothing to deserialise (tf_keras says so on load)
    raw = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return _parse(raw, path), version


def _read_zip(path: Path) -> tuple[Any, str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                return None, "2"  # tf_keras reports the missing config itself
            version = "2"
            if "metadata.json" in names and archive.getinfo("metadata.json").file_size < 1 << 20:
                meta = _parse(archive.read("metadata.json").decode("utf-8", "replace"), path)
                if isinstance(meta, dict):
                    version = str(meta.get("keras_version", "2"))
            if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise EdgesmithError(f"{path}: its config.json is over 64 MiB; refusing to read it")
            raw = archive.read("config.json").decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as exc:
        raise EdgesmithError(f"cannot read {path} as a .keras zip: {exc}") from None
    except NotImplementedError as exc:  # a member compressed with a method zipfile lacks
        raise EdgesmithError(
            f"cannot read {path} as a .keras zip: {exc} (Keras writes stored or deflated "
            "members only)"
        ) from None
    return _parse(raw, path), version


def _parse(raw: str, path: Path) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise EdgesmithError(f"{path}: its model config is not valid JSON ({exc})") from None


def _safe_module(module: str, roots: tuple[str, ...] = SAFE_MODULES) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def _name_of(node: dict) -> str | None:
    config = node.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    name = name if name is not None else node.get("name")
    return None if name is None else str(name)


def _describe(node: dict, class_name: str) -> str:
    if class_name == "function" and isinstance(node.get("config"), str):
        return f"the function {node['config']!r}"
    name = _name_of(node)
    return f"{class_name} {name!r}" if name is not None else repr(class_name)


def _looks_like_bytecode(text: str) -> bool:
    """A base64 string that decodes to a marshalled code object (what Keras' ``func_dump`` writes).

    ``marshal`` writes a code object as ``c`` (0x63, or 0xe3 with its reference flag) followed by
    small little-endian counts (arguments, positional-only, keyword-only): checking that shape
    keeps ordinary base64-looking names from matching.
    """
    if len(text) < 24 or not _BASE64.fullmatch(text):
        return False
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return (
        len(raw) >= 13
        and raw[0] in (0x63, 0xE3)
        and all(raw[offset + 1 : offset + 4] == b"\0\0\0" for offset in (1, 5, 9))
    )


def _code_key(key: str) -> bool:
    return key in CODE_KEYS or key.endswith(("_fn", "_function"))


def _type_key(key: str, value: Any) -> bool:
    """A ``*_type`` key saying that its sibling holds a serialised callable."""
    if key.endswith(("_fn_type", "function_type")):
        return value is not None
    return key.endswith("_type") and isinstance(value, str) and value in CALLABLE_TYPES


def _module_key(key: str) -> bool:
    return key == "module" or key.endswith("_module")


@dataclasses.dataclass
class _Walk:
    """The state of one walk through a config."""

    roots: tuple[str, ...]
    reasons: list[str] = dataclasses.field(default_factory=list)
    layers: list[str] = dataclasses.field(default_factory=list)

    def refuse(self, path: list[str], why: str) -> None:
        self.reasons.append(f"{' > '.join(path)}: {why}")


def _walk(node: Any, path: list[str], walk: _Walk, depth: int = 0) -> None:
    """Check every dict, list and string in a (tf_keras or Keras 3) config, at any depth."""
    if depth > MAX_DEPTH:
        walk.refuse(path, f"the config is nested deeper than {MAX_DEPTH} levels")
        return
    if isinstance(node, str):
        if _looks_like_bytecode(node):
            walk.refuse(path, "holds marshalled Python bytecode")
        return
    if isinstance(node, list):
        *parent, last = path
        for index, item in enumerate(node):
            _walk(item, [*parent, f"{last}[{index}]"], walk, depth + 1)
        return
    if not isinstance(node, dict):
        return  # numbers, booleans, null: data
    exempt: set[str] = set()
    if "class_name" in node:
        if not _check_object(node, path, walk):
            return  # refused: what its fields hold is that object's business
        exempt.add("module")  # checked with the object
        if node.get("class_name") in OP_LAYERS:
            config = node.get("config")
            if isinstance(config, dict):
                _walk_fields(config, path, walk, depth + 1, exempt={"function"})
            _walk_fields(node, path, walk, depth, exempt={"module", "config"})
            return
    _walk_fields(node, path, walk, depth, exempt=exempt)


def _walk_fields(node: dict, path: list[str], walk: _Walk, depth: int, exempt: set[str]) -> None:
    exempt = set(exempt)
    for key, value in node.items():  # JSON: every key is a string
        if key in exempt:
            continue
        here = [*path, key]
        if key == "layers" and isinstance(value, list):
            walk.layers.extend(
                entry["class_name"]
                for entry in value
                if isinstance(entry, dict) and isinstance(entry.get("class_name"), str)
            )
        elif (
            key == "layer" and isinstance(value, dict) and isinstance(value.get("class_name"), str)
        ):
            walk.layers.append(value["class_name"])  # a wrapper's inner layer (QuantizeWrapper...)
        why = _field_problem(node, key, value, walk.roots)
        if why is not None:
            walk.refuse(here, why)
            base = key[: -len("_type")] if key.endswith("_type") else key
            base = base[: -len("_module")] if base.endswith("_module") else base
            # one reason per callable: its ``*_type`` and ``*_module`` siblings say the same
            exempt |= {base, f"{base}_type", f"{base}_module"}
            if base == "function":
                exempt.add("module")
            continue
        _walk(value, path if key == "config" else here, walk, depth + 1)


def _field_problem(node: dict, key: str, value: Any, roots: tuple[str, ...]) -> str | None:
    """Why a dict entry makes Keras run code from the file (None when it does not)."""
    if _code_key(key) and value is not None:
        kind = node.get(f"{key}_type")
        module = node.get(f"{key}_module", node.get("module") if key == "function" else None)
        if kind == "function" or (kind is None and isinstance(value, str)):
            if isinstance(value, str) and not _looks_like_bytecode(value):
                source = f" from the module {module!r}" if module is not None else ""
                return f"names the Python function {value!r}{source} for Keras to call"
        what = "lambda" if kind == "lambda" else "function"
        return f"holds a Python {what} (marshalled bytecode) stored in the file"
    if _type_key(key, value):
        return f"says {value!r}: a Python callable stored in the file"
    if _module_key(key) and value is not None:
        if not (isinstance(value, str) and _safe_module(value, roots)):
            return f"names the Python module {value!r} to import"
    if isinstance(value, str):
        for suffix, names, what in STRING_FIELDS:
            if (key == suffix or key.endswith(suffix)) and value not in names:
                return f"the {what} {value!r} is not a Keras built-in (custom code)"
    return None


def _check_object(node: dict, path: list[str], walk: _Walk) -> bool:
    """Whether a serialised object is an allowlisted built-in (else its reason is recorded)."""
    class_name = node.get("class_name")
    if not isinstance(class_name, str):
        walk.refuse(path, f"its class_name is {class_name!r}, not a class name")
        return False
    what = _describe(node, class_name)
    module = node.get("module")
    roots = walk.roots + ("builtins",) if class_name == "function" else walk.roots
    if module is not None and not (isinstance(module, str) and _safe_module(module, roots)):
        walk.refuse(path, f"{what} names the Python module {module!r} to import")
        return False
    config = node.get("config")
    registered = node.get("registered_name")
    if registered is not None and registered not in (class_name, config):
        walk.refuse(path, f"{what} is the custom object {registered!r}")
        return False
    if class_name == "function":
        if isinstance(config, str) and config in FUNCTION_NAMES:
            return True
        walk.refuse(
            path,
            f"the function {config!r} (module {module!r}) is not a Keras built-in activation "
            "or loss (custom code)",
        )
        return False
    if class_name == "Lambda":
        walk.refuse(path, f"layer {_name_of(node)!r} is a Lambda (Python code stored in the file)")
        return False
    if class_name == "__lambda__":
        walk.refuse(path, "a Python lambda stored in the file")
        return False
    if class_name in OP_LAYERS:
        function = config.get("function") if isinstance(config, dict) else None
        if isinstance(function, str) and function.startswith(SAFE_TF_OPS):
            return True
        walk.refuse(path, f"layer {_name_of(node)!r} calls the TensorFlow function {function!r}")
        return False
    if class_name in ALLOWED_CLASSES:
        return True
    if class_name in KERAS3_OPS and isinstance(module, str):
        if module.startswith(KERAS3_OP_MODULE):
            return True
    walk.refuse(
        path,
        f"{what} is not one of the Keras built-ins that load without code (a custom or unknown "
        "class)",
    )
    return False


def check_model_file(
    path: str | Path,
    *,
    trust_model: bool | None = None,
    known_layer: Callable[[str], bool] | None = None,
) -> ModelFileReport:
    """Refuse a model file that could run code when loaded, unless the user trusts it.

    Anything in its config outside the allowlist (see the module's docstring) counts: the
    message names where it is, e.g. ``model > layers[3] > cell > residual_fn``.

    Args:
        path: a ``.keras``/``.h5`` file or a SavedModel directory.
        trust_model: accept such files; ``None`` means the :func:`trusting_model_code` scope.
        known_layer: says whether a layer class name is one the loader has built in; classes it
            rejects count as custom code (a second check on top of the allowlist, made only when
            given, since it needs the loader, and for Keras 2 files: Keras 3 ones name each
            class's module, checked instead).

    Returns:
        The report (its ``reasons`` are non-empty only for a trusted file that needed it).

    Raises:
        EdgesmithError: naming the first reason and ``--trust-model``, or when the file is not a
            readable model file or one that records no input shape.
    """
    report = inspect_model_file(path)
    reasons = list(report.reasons)
    if known_layer is not None and report.keras_major < 3:  # Keras 3 configs name modules
        for class_name in dict.fromkeys(report.layer_classes):
            if class_name not in MODEL_CLASSES + OP_LAYERS and not known_layer(class_name):
                reasons.append(f"it uses the layer class {class_name!r}, which is custom code")
    if reasons and not model_code_trusted(trust_model):
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        raise EdgesmithError(
            f"{path}: {reasons[0]}{more}; loading it could run code from the file. Pass "
            f"{TRUST_FLAG} (API: trust_model=True) only if you trust whoever made it"
        )
    if report.unbuilt:
        raise EdgesmithError(
            f"{path}: the model has no input shape (a Sequential saved before it was built); "
            "expected a model with an Input layer, or one built or trained before saving"
        )
    return dataclasses.replace(report, reasons=tuple(reasons))
