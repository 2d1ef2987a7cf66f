"""``edgesmith import``: register a user's trained Keras model as an artifact, evaluated on data."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgesmith.core.artifacts import Artifact, ArtifactWriter, check_output_dir
from edgesmith.core.datasets import load_dataset
from edgesmith.core.manifest import DatasetRecord, Metrics, OutputRecord
from edgesmith.core.progress import Reporter, stderr_reporter
from edgesmith.tfkeras import model_io
from edgesmith.tfkeras.evaluate import eval_metrics
from edgesmith.tfkeras.model_safety import check_model_file
from edgesmith.tfkeras.model_stats import count_macs, count_params
from edgesmith.train.inputs import input_record, resolve_normalization


def import_model(
    model: str | Path,
    data: str,
    out: str | Path,
    *,
    normalization: str = "unit",
    report: Reporter | None = None,
    trust_model: bool | None = None,
) -> Artifact:
    """Evaluate a user's trained model on a dataset and write it as a Keras artifact.

    The model file is copied unchanged when tf_keras reads it; a Keras 3 ``.keras`` file is
    rebuilt in tf_keras (so compression can wrap it) and saved as ``model.keras``.

    Args:
        model: a ``.keras``/``.h5`` file or a SavedModel directory.
        data: data spec whose eval split measures the model.
        out: the new artifact directory.
        normalization: what the model expects from raw pixels (the file cannot say).
        report: receives progress lines.
        trust_model: accept a file that runs code when loaded (a Lambda layer, custom classes,
            a SavedModel's traced functions: ``--trust-model``); the manifest records
            ``trusted_model_code: true`` when it did. Off, such a file is refused before it is
            deserialised. ``None`` follows
            :func:`~edgesmith.tfkeras.model_safety.trusting_model_code`.

    Raises:
        EdgesmithError: for an unreadable model, one that would run code without
            ``trust_model``, data it does not fit, or a used ``out``.
    """
    report = report or stderr_reporter()
    check_output_dir(out)
    trusted_code = bool(check_model_file(model, trust_model=trust_model).reasons)
    dataset = load_dataset(data)
    norm = resolve_normalization(normalization, dataset)
    keras_model, how = model_io.load_keras_model(model, trust_model=trust_model)
    model_io.check_model_fits(keras_model, dataset.input_shape, dataset.num_classes, str(model))
    kind = model_io.output_kind(keras_model, norm.apply(dataset.x_eval[:32]))
    report(f"loaded {model} ({how}, outputs {kind}); evaluating on {len(dataset.y_eval)} images")
    metrics = eval_metrics(keras_model, dataset, norm)
    metrics.update({"params": count_params(keras_model), "macs": count_macs(keras_model)})
    source = Path(model)
    with ArtifactWriter(out) as writer:
        if how != "tf_keras":
            name = model_io.MODEL_FILE
            model_io.save_model(keras_model, writer.dir / name)
        elif source.is_dir():
            name = "saved_model"
            shutil.copytree(source, writer.dir / name)
        else:
            name = "model" + source.suffix.lower()
            shutil.copyfile(source, writer.dir / name)
        artifact = writer.commit(
            model_files=[name],
            stage="train",
            technique="import",
            fmt="keras",
            config={
                "model": str(model),
                "data": data,
                "normalization": norm.to_dict(),
                "loaded_as": how,
            },
            input_spec=input_record(dataset, norm),
            labels=list(dataset.labels),
            dataset=DatasetRecord.from_dict(dataset.describe()),
            metrics=Metrics.from_dict(metrics),
            output=OutputRecord(kind=kind, shape=(dataset.num_classes,)),
            trusted_model_code=trusted_code,
        )
    report(
        f"eval accuracy {metrics['accuracy']:.4f} on {metrics['num_eval']} images; "
        f"wrote {artifact.path}"
    )
    return artifact
