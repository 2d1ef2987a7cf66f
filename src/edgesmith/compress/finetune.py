"""What every technique shares: load the source, fine-tune (optionally distilled), measure, publish.

A technique changes the model; everything around that (data, normalisation, optimizer and
schedule, the teacher, progress lines, the manifest's copied records) is done the same way here,
so that a pruned, clustered or QAT artifact is comparable with its parent number for number.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgesmith.compress.config import FinetuneConfig
from edgesmith.compress.source import check_teacher_fits, read_keras_source
from edgesmith.core.artifacts import Artifact, ArtifactWriter
from edgesmith.core.datasets import Dataset, load_dataset
from edgesmith.core.manifest import DatasetRecord, Metrics, OutputRecord
from edgesmith.core.normalization import Normalization
from edgesmith.core.progress import Reporter
from edgesmith.tfkeras import model_io
from edgesmith.tfkeras.backend import keras
from edgesmith.tfkeras.evaluate import eval_metrics
from edgesmith.tfkeras.model_stats import count_macs, count_params
from edgesmith.tfkeras.optimizer import make_optimizer

KERAS_FILE = "model.keras"
H5_FILE = "model.h5"


@dataclasses.dataclass
class Source:
    """A Keras artifact loaded for compression, with the data and preprocessing it was made for.

    Attributes:
        artifact: the source artifact.
        model: its tf_keras model.
        dataset: the data to fine-tune and evaluate on (the artifact's own unless overridden).
        norm: the input normalisation the model expects.
        kind: ``probabilities`` or ``logits``: what the model outputs.
    """

    artifact: Artifact
    model: keras.Model
    dataset: Dataset
    norm: Normalization
    kind: str

    @property
    def accuracy(self) -> float | None:
        """The source's recorded eval accuracy (valid when the data was not overridden)."""
        return self.artifact.metrics.accuracy


def load_source(
    path: str | Path | Artifact,
    *,
    data: str | None = None,
    role: str = "--from",
    allow_qat: bool = False,
    dataset: Dataset | None = None,
) -> Source:
    """Load a Keras artifact with its dataset and normalisation.

    Args:
        path: the artifact directory (or an already opened artifact).
        data: data spec overriding the artifact's recorded one.
        role: the argument's name in error messages.
        allow_qat: accept a QAT artifact.
        dataset: an already loaded dataset to reuse (saves reloading CIFAR-10 per step).

    Raises:
        EdgesmithError: for a non-Keras artifact, an unreadable model, or data it does not fit.
    """
    artifact = path if isinstance(path, Artifact) else read_keras_source(path, role=role)
    if artifact.is_qat and not allow_qat:
        read_keras_source(artifact.path, role=role)  # raises the QAT message
    spec = data or artifact.data_spec
    if dataset is None or dataset.spec != spec:
        dataset = load_dataset(spec)
    quantized = artifact.is_qat
    model, _ = model_io.load_keras_model(artifact.model_path, quantized=quantized)
    model_io.check_model_fits(model, dataset.input_shape, dataset.num_classes, str(artifact.path))
    norm = artifact.normalization
    kind = artifact.kind
    return Source(artifact, model, dataset, norm, kind)


def loss_for(kind: str, label_smoothing: float = 0.0) -> keras.losses.Loss:
    """Cross-entropy on what the model outputs (probabilities or logits)."""
    return keras.losses.CategoricalCrossentropy(
        from_logits=kind == "logits", label_smoothing=label_smoothing
    )


@dataclasses.dataclass(eq=False)
class EpochLine(keras.callbacks.Callback):
    """One progress line per epoch, and a history kept for the manifest.

    Attributes:
        label: what is being trained (``prune``, ``qat``...), printed first.
        epochs: the total, for ``epoch 2/4``.
        report: receives the lines.
        status: optional extra text per epoch (for example the current sparsity).
        history: one record per finished epoch.
    """

    label: str
    epochs: int
    report: Reporter
    status: Callable[[], str] | None = None
    history: list[dict] = dataclasses.field(default_factory=list)
    _start: float = dataclasses.field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__init__()

    def on_epoch_begin(self, epoch, logs=None):
        """Start the epoch's clock."""
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        """Record and print the epoch."""
        logs = logs or {}
        record = {
            "epoch": epoch + 1,
            "loss": round(float(logs.get("loss", float("nan"))), 5),
            "train_accuracy": round(float(logs.get("accuracy", float("nan"))), 5),
            "eval_accuracy": round(float(logs.get("val_accuracy", float("nan"))), 5),
            "seconds": round(time.perf_counter() - self._start, 2),
        }
        self.history.append(record)
        extra = f"  {self.status()}" if self.status else ""
        self.report(
            f"{self.label} epoch {epoch + 1}/{self.epochs}  loss {record['loss']:.4f}  "
            f"acc {record['train_accuracy']:.4f}  eval_acc {record['eval_accuracy']:.4f}"
            f"{extra}  {record['seconds']:.1f}s"
        )


def steps_per_epoch(source: Source, config: FinetuneConfig) -> int:
    """Optimizer steps in one pass over the training split."""
    return -(-len(source.dataset.y_train) // config.batch_size)


def fit(
    model: keras.Model,
    source: Source,
    config: FinetuneConfig,
    *,
    label: str,
    report: Reporter,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    status: Callable[[], str] | None = None,
    warmup_epochs: float = 0.0,
    teacher: Source | None = None,
    learning_rate: float | None = None,
) -> list[dict]:
    """Fine-tune ``model`` in place on the source's data with the config's settings.

    With ``config.teacher`` (or ``teacher``), the model learns from the teacher's soft labels as
    well (:mod:`edgesmith.compress.distillation`), whatever else wraps it (pruning, QAT...).

    Args:
        model: the model to train (possibly wrapped by tfmot).
        source: the data, normalisation and output kind.
        config: fine-tuning settings.
        label: the progress lines' prefix.
        report: receives one line per epoch.
        callbacks: the technique's own callbacks (e.g. ``UpdatePruningStep``).
        status: extra per-epoch text.
        warmup_epochs: linear learning-rate warm-up.
        teacher: an already loaded teacher (else ``config.teacher`` is loaded).
        learning_rate: overrides the config's peak rate.

    Returns:
        One record per epoch.
    """
    from edgesmith.tfkeras.pipeline import eval_dataset, train_dataset

    dataset = source.dataset
    keras.utils.set_random_seed(config.seed)
    steps = steps_per_epoch(source, config)
    optimizer = make_optimizer(
        config.optimizer,
        learning_rate if learning_rate is not None else config.peak_learning_rate,
        total_steps=steps * config.epochs,
        warmup_steps=round(warmup_epochs * steps),
        schedule="cosine",
        weight_decay=config.weight_decay,
    )
    if teacher is None and config.teacher:
        teacher = load_teacher(config.teacher, source)
    trainee = model
    if teacher is not None:
        from edgesmith.compress.distillation import Distiller

        trainee = Distiller(
            model,
            teacher.model,
            student_kind=source.kind,
            teacher_kind=teacher.kind,
            alpha=config.alpha,
            temperature=config.temperature,
            label_smoothing=config.label_smoothing,
        )
    trainee.compile(
        optimizer=optimizer,
        loss=loss_for(source.kind, config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    train_ds = train_dataset(
        dataset.x_train,
        dataset.y_train,
        num_classes=dataset.num_classes,
        norm=source.norm,
        batch_size=config.batch_size,
        augment=config.augmentations(flip_ok=dataset.flip_ok),
        seed=config.seed,
    )
    eval_ds = eval_dataset(
        dataset.x_eval, dataset.y_eval, num_classes=dataset.num_classes, norm=source.norm
    )
    line = EpochLine(label, config.epochs, report, status)
    trainee.fit(
        train_ds,
        epochs=config.epochs,
        validation_data=eval_ds,
        callbacks=[*callbacks, line],
        verbose=0,
    )
    return line.history


def load_teacher(path: str | Path, student: Source) -> Source:
    """Load a teacher artifact and check that it sees the student's inputs and classes.

    Raises:
        EdgesmithError: when the teacher's input shape, classes or normalisation differ.
    """
    teacher_artifact = read_keras_source(path, role="--teacher", allow_qat=True)
    check_teacher_fits(teacher_artifact.manifest, student.artifact.manifest, path)
    return load_source(
        teacher_artifact,
        role="--teacher",
        allow_qat=True,
        dataset=student.dataset,
        data=student.dataset.spec,
    )


def resolved_config(config: Any, source: Source, **more: Any) -> dict:
    """The manifest's ``config``: every field, the values actually used, and the source."""
    values = config.to_dict()
    if isinstance(config, FinetuneConfig):
        values["learning_rate"] = config.peak_learning_rate
        values["augment"] = ",".join(config.augmentations(flip_ok=source.dataset.flip_ok)) or (
            "none"
        )
    values["data"] = source.dataset.spec
    values["source"] = str(source.artifact.path)
    values.update(more)
    return values


def measure(model: keras.Model, source: Source) -> dict:
    """Eval accuracy, params and MACs, and the change in accuracy from the source."""
    metrics = eval_metrics(model, source.dataset, source.norm)
    metrics["params"] = count_params(model)
    metrics["macs"] = count_macs(model)
    before = source.accuracy
    if before is not None and source.dataset.spec == source.artifact.data_spec:
        metrics["source_accuracy"] = before
        metrics["accuracy_drop"] = round(100 * (before - metrics["accuracy"]), 3)
    return metrics


def publish(
    out: str | Path,
    model: keras.Model,
    source: Source,
    *,
    technique: str,
    config: dict,
    metrics: dict,
    model_file: str = KERAS_FILE,
    report: Reporter,
    **sections: Any,
) -> Artifact:
    """Save the model and publish the artifact with the source's input, output and labels.

    ``metrics`` is validated as the manifest's :class:`~edgesmith.core.manifest.Metrics`; the
    ``history`` and the technique's own section (``distillation``, ``clustering``, ``qat`` with
    ``quantization``, ``pruning``) go to the manifest as given in ``sections``
    (:meth:`~edgesmith.core.artifacts.ArtifactWriter.commit`).

    Raises:
        EdgesmithError: if ``out`` is taken.
    """
    with ArtifactWriter(out) as writer:
        with warnings.catch_warnings():  # tf_keras calls .h5 "legacy"; QAT models need it
            warnings.simplefilter("ignore", UserWarning)
            model_io.save_model(model, writer.dir / model_file)
        artifact = writer.commit(
            model_files=[model_file],
            stage="compress",
            technique=technique,
            fmt="keras",
            config=config,
            input_spec=source.artifact.input_spec,
            labels=source.artifact.labels,
            dataset=DatasetRecord.from_dict(source.dataset.describe()),
            metrics=Metrics.from_dict(metrics),
            parent=source.artifact.id,
            output=OutputRecord(kind=source.kind, shape=(source.dataset.num_classes,)),
            **sections,
        )
    written = artifact.metrics
    drop = written.accuracy_drop
    drop_text = f" ({-drop:+.2f} points)" if drop is not None else ""
    report(
        f"{technique}: eval accuracy {written.accuracy:.4f}{drop_text}, "
        f"{written.params:,} params, {written.macs / 1e6:.2f} M MACs; wrote {artifact.path}"
    )
    return artifact
