"""The export's source: a Keras artifact, its model loaded in tf_keras, and its dataset.

Everything the exporter needs from the source is gathered here once: the model (QAT models
load inside tfmot's ``quantize_scope``), the input normalisation and output kind recorded in
its manifest, and the dataset that supplies calibration images and the parity eval split.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from edgesmith.core.artifacts import Artifact, read_artifact
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.normalization import Normalization
from edgesmith.tfkeras.model_safety import check_model_file


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """What the manifest of a source artifact says, checked without TensorFlow.

    Attributes:
        artifact: the source artifact directory and manifest.
        norm: the input normalisation the model expects.
        input_shape: (H, W, C).
        output_kind: ``probabilities`` or ``logits``.
        num_classes: length of the output vector.
        qat: whether the model was trained quantisation-aware (tfmot-wrapped layers).
    """

    artifact: Artifact
    norm: Normalization
    input_shape: tuple[int, int, int]
    output_kind: str
    num_classes: int
    qat: bool

    @property
    def data_spec(self) -> str:
        """The dataset spec recorded in the source manifest."""
        return self.artifact.data_spec


def read_source(path: str | Path, *, trust_model: bool | None = None) -> SourceInfo:
    """Open and check a source artifact (fast: no TensorFlow, no model load).

    The model file's config is inspected too: one that would run code when loaded (a Lambda
    layer, custom classes, a SavedModel) is refused unless trusted, whatever the manifest says.

    Args:
        path: the artifact directory.
        trust_model: accept such a model file (``--trust-model``); ``None`` follows
            :func:`edgesmith.tfkeras.model_safety.trusting_model_code` (off by default).

    Raises:
        EdgesmithError: when the directory is not an artifact, or holds a .tflite/.onnx file
            rather than a Keras model, or its manifest lacks the input/output records, or its
            model file would run code and is not trusted.
    """
    artifact = read_artifact(path)
    if artifact.format != "keras":
        raise EdgesmithError(
            f"--from {artifact.path} holds a {artifact.format} model ({artifact.stage}"
            f" stage); export needs a Keras artifact (from edgesmith train, import or compress)"
        )
    norm = artifact.normalization
    kind = artifact.kind
    if kind not in ("probabilities", "logits"):
        raise EdgesmithError(
            f"{artifact.path}: output kind must be probabilities or logits. Received: {kind!r}"
        )
    shape = artifact.input_spec.shape
    if len(shape) != 3:
        raise EdgesmithError(
            f"{artifact.path}: export handles image models with inputs (H, W, C). "
            f"Received input shape {list(shape)}"
        )
    output = artifact.output_spec
    num_classes = (output.shape if output and output.shape else (len(artifact.labels),))[-1]
    qat = artifact.is_qat
    check_model_file(artifact.model_path, trust_model=trust_model)
    return SourceInfo(artifact, norm, shape, kind, num_classes, qat)  # type: ignore[arg-type]


def load_source_model(source: SourceInfo):
    """Load the source's tf_keras model (QAT models inside tfmot's ``quantize_scope``).

    tfmot's wrappers do not survive a ``.keras`` round trip in tf_keras 2.21 (the quantize
    layer reloads 3 of its 5 variables); QAT artifacts saved as ``.h5`` load.

    Returns:
        The model and how it was read: ``tf_keras``, or ``keras3-rebuilt`` for a file Keras 3
        saved (rebuilt in tf_keras layer by layer).

    Raises:
        EdgesmithError: when the model file cannot be read or does not fit the manifest.
    """
    from edgesmith.tfkeras.model_io import load_keras_model

    model, read_as = load_keras_model(source.artifact.model_path, quantized=source.qat)
    model_in = tuple(model.inputs[0].shape[1:])
    if len(model.inputs) != 1 or len(model.outputs) != 1 or model_in != source.input_shape:
        raise EdgesmithError(
            f"{source.artifact.model_path}: the model takes {model_in} but the manifest records "
            f"{list(source.input_shape)}; export handles single-input, single-output models"
        )
    return model, read_as


@dataclasses.dataclass(frozen=True)
class EvalData:
    """Raw pixels for calibration and parity, from the source's dataset (or ``--data``).

    Attributes:
        spec: the data spec they came from.
        calibration: training images (raw pixels) for int8 calibration.
        x_eval: eval images (raw pixels).
        y_eval: eval class indices.
    """

    spec: str
    calibration: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray


def load_eval_data(
    source: SourceInfo,
    *,
    spec: str | None,
    calibration_samples: int,
    max_eval: int | None,
    needs_calibration: bool,
) -> EvalData:
    """Load the images that calibrate int8 formats and check every file's parity.

    Calibration takes ``calibration_samples`` training images spread over the split (a fixed
    stride, so the pick is reproducible and not just the first class of a sorted file).

    Raises:
        EdgesmithError: when the data cannot be loaded or does not fit the model; for integer
            formats the message says calibration data is what is missing.
    """
    from edgesmith.core.datasets import load_dataset
    from edgesmith.export.calibration import calibration_pixels

    spec = spec or source.data_spec
    try:
        dataset = load_dataset(spec)
    except EdgesmithError as exc:
        need = (
            "int8 calibration and the parity check need"
            if needs_calibration
            else ("the parity check needs")
        )
        raise EdgesmithError(
            f"{need} the source's data, which cannot be loaded ({exc}); pass --data SPEC"
        ) from None
    if dataset.input_shape != source.input_shape:
        raise EdgesmithError(
            f"data {spec} has images shaped {list(dataset.input_shape)} but the model takes "
            f"{list(source.input_shape)}"
        )
    if needs_calibration and len(dataset.x_train) == 0:
        raise EdgesmithError(
            f"int8 formats need calibration data: {spec} has no training images; pass --data SPEC"
        )
    if len(dataset.x_eval) == 0:
        raise EdgesmithError(f"the parity check needs eval images: {spec} has none")
    n_eval = len(dataset.x_eval) if max_eval is None else min(max_eval, len(dataset.x_eval))
    return EvalData(
        spec=spec,
        calibration=calibration_pixels(dataset.x_train, calibration_samples),
        x_eval=np.asarray(dataset.x_eval[:n_eval]),
        y_eval=np.asarray(dataset.y_eval[:n_eval]),
    )
