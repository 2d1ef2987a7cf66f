"""The train stage: data spec + model -> a trained Keras artifact with its eval accuracy."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from edgesmith.core.artifacts import Artifact, ArtifactWriter, check_output_dir
from edgesmith.core.datasets import Dataset, load_dataset
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import InputPipeline
from edgesmith.core.normalization import Normalization
from edgesmith.core.progress import Reporter, stderr_reporter
from edgesmith.tfkeras import model_io
from edgesmith.tfkeras.augment import DeviceAugmenter, crop_padding
from edgesmith.tfkeras.backend import keras, tf
from edgesmith.tfkeras.evaluate import eval_metrics
from edgesmith.tfkeras.model_safety import check_model_file
from edgesmith.tfkeras.model_stats import count_macs, count_params
from edgesmith.tfkeras.optimizer import make_optimizer
from edgesmith.train import devices, zoo
from edgesmith.train.callbacks import EpochReporter
from edgesmith.train.config import TrainConfig
from edgesmith.train.inputs import resolve_normalization
from edgesmith.train.results import history_metrics, publish_trained


def _build_or_load(
    config: TrainConfig, dataset: Dataset, trust_model: bool | None = None
) -> tuple[keras.Model, str]:
    if config.model in zoo.ZOO:
        return zoo.build_model(
            config.model, dataset.input_shape, dataset.num_classes, widths=config.widths
        ), "zoo"
    model, how = model_io.load_keras_model(config.model_file, trust_model=trust_model)
    model_io.check_model_fits(model, dataset.input_shape, dataset.num_classes, config.model)
    return model, how


def float32_copy(model: keras.Model) -> keras.Model:
    """The same model and weights with a float32 dtype policy everywhere (for saving/export).

    Mixed-precision training keeps float32 variables, so nothing is lost; the copy computes in
    float32, which is what the converters and the runtimes expect.
    """
    config = _float32_policies(model.get_config())
    cls = keras.Sequential if isinstance(model, keras.Sequential) else keras.Model
    copy = cls.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def _float32_policies(node):
    if isinstance(node, list):
        return [_float32_policies(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") in ("Policy", "DTypePolicy"):
        return "float32"
    return {k: _float32_policies(v) for k, v in node.items()}


def weights_digest(model: keras.Model) -> str:
    """sha256 over the model's weights: workers that trained in sync print the same digest."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight, dtype=np.float32).tobytes())
    return digest.hexdigest()


def _check_resume(work: Path, settings: dict) -> None:
    saved = work / "train_config.json"
    if saved.is_file():
        before = json.loads(saved.read_text())
        before.setdefault("augment_on", "host")  # runs begun before the option augmented there
        changed = sorted(k for k, v in settings.items() if before.get(k) != v)
        if changed:
            raise EdgesmithError(
                f"--resume: the interrupted run in {work} used different settings for "
                f"{', '.join(changed)}; resume with the same settings or start over"
            )
    saved.write_text(json.dumps(settings, indent=1))


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    report: Reporter | None = None,
    trust_model: bool | None = None,
) -> Artifact:
    """Train a model on a dataset and write a Keras artifact with its eval accuracy.

    Work happens in ``<out>.partial`` (checkpoints each epoch, TensorBoard logs under ``logs/``);
    the finished directory appears at ``out`` in one rename. An interrupted run continues with
    ``resume=True`` from its last finished epoch. Where augmentation runs and whether batches
    are prefetched to the GPU follow ``devices.plan_input`` and are recorded in the manifest's
    ``input_pipeline``; the saved model is the same whichever placement trained it.

    Args:
        config: the training settings.
        out: the new artifact directory (must not exist or be empty).
        resume: continue the interrupted run left in ``<out>.partial``.
        report: receives one progress line per epoch (stderr by default).
        trust_model: accept a ``config.model`` file that runs code when loaded (a Lambda
            layer, custom classes, a SavedModel: ``--trust-model``); recorded in the manifest
            as ``trusted_model_code``. ``None`` follows
            :func:`edgesmith.tfkeras.model_safety.trusting_model_code` (off by default).

    Returns:
        The written artifact.

    Raises:
        EdgesmithError: for bad settings, data or model, before training starts.
    """
    report = report or stderr_reporter()
    check_output_dir(out)
    trusted_code = False
    if config.model not in zoo.ZOO:  # before any data or TensorFlow work
        trusted_code = bool(check_model_file(config.model_file, trust_model=trust_model).reasons)
    dataset = load_dataset(config.data)
    norm = resolve_normalization(config.normalization, dataset)
    augment = config.augmentations(flip_ok=dataset.flip_ok)
    plan = devices.plan_devices(
        config.accelerator,
        devices.visible_gpus(),
        strategy=config.strategy,
        tf_config=os.environ.get("TF_CONFIG"),
    )
    strategy = devices.make_strategy(plan)
    placement = devices.plan_input(plan, config.augment_on)
    if not plan.is_chief:  # TensorFlow's convention: only the chief's files are kept
        out = Path(tempfile.mkdtemp(prefix=f"edgesmith-worker{plan.worker_index}-")) / "artifact"
    report(
        f"data {dataset.spec}: {len(dataset.y_train)} train / {len(dataset.y_eval)} eval "
        f"images {dataset.input_shape}, {dataset.num_classes} classes; device {plan.description}"
    )
    report(placement.describe(augment))

    with ArtifactWriter(out, keep_if="backup", resume=resume) as writer:
        # "auto" resolved: a resume must rebuild the same (checkpointed) wrapper or its absence
        _check_resume(writer.dir, {**config.to_dict(), "augment_on": placement.augment_on})
        keras.utils.set_random_seed(config.seed)
        global_batch = config.batch_size
        steps = -(-len(dataset.y_train) // global_batch)
        # Layers take the global dtype policy when built; reset it whatever happens.
        keras.mixed_precision.set_global_policy(config.precision)
        try:
            with strategy.scope():
                model, source = _build_or_load(config, dataset, trust_model)
                kind = (
                    "probabilities"
                    if source == "zoo"
                    else model_io.output_kind(model, norm.apply(dataset.x_train[:32]))
                )
                trainee = model
                if placement.augment_on == "device":
                    trainee = DeviceAugmenter(
                        model,
                        norm=norm,
                        augment=augment,
                        pad=crop_padding(dataset.input_shape),
                        seed=config.seed,
                    )
                trainee.compile(
                    optimizer=make_optimizer(**config.optimizer_settings(steps)),
                    loss=keras.losses.CategoricalCrossentropy(
                        from_logits=kind == "logits", label_smoothing=config.label_smoothing
                    ),
                    metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                    jit_compile=config.xla,
                )
        finally:
            keras.mixed_precision.set_global_policy("float32")
        train_ds, eval_ds = _pipelines(dataset, norm, config, augment, placement)
        epoch_reporter = EpochReporter(
            epochs=config.epochs,
            num_train=len(dataset.y_train),
            history_path=writer.dir / "history.json",
            report=report,
        )
        callbacks = [
            keras.callbacks.BackupAndRestore(str(writer.dir / "backup")),
            epoch_reporter,
            keras.callbacks.TensorBoard(
                str(writer.dir / "logs"), write_graph=False, profile_batch=0
            ),
        ]
        report(
            f"model {config.model}: {count_params(model):,} params, "
            f"{count_macs(model) / 1e6:.2f} M MACs; {config.epochs} epochs of {steps} steps"
        )
        started = time.perf_counter()
        trainee.fit(
            train_ds, epochs=config.epochs, validation_data=eval_ds, callbacks=callbacks, verbose=0
        )
        wall = time.perf_counter() - started
        metrics = eval_metrics(model, dataset, norm)
        history = epoch_reporter.history
        metrics.update(
            {
                "params": count_params(model),
                "macs": count_macs(model),
                **history_metrics(history, wall),
            }
        )
        if config.precision != "float32":
            model = float32_copy(model)
        if plan.num_workers > 1:
            report(f"worker {plan.worker_index}: weights sha256 {weights_digest(model)}")
        model_io.save_model(model, writer.dir / model_io.MODEL_FILE)
        artifact = publish_trained(
            writer,
            config,
            dataset,
            norm,
            model_file=model_io.MODEL_FILE,
            source=source,
            kind=kind,
            metrics=metrics,
            run_settings={
                "augment_on": placement.augment_on,
                "strategy": plan.strategy,
                "devices": list(plan.devices),
            },
            input_pipeline=InputPipeline.from_dict(placement.to_dict()),
            history=history,
            trusted_model_code=trusted_code,
        )
    report(
        f"eval accuracy {metrics['accuracy']:.4f} on {metrics['num_eval']} images; "
        f"wrote {artifact.path}"
    )
    return artifact


def _pipelines(
    dataset: Dataset,
    norm: Normalization,
    config: TrainConfig,
    augment: tuple[str, ...],
    placement: devices.InputPlan,
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The training and the eval pipeline, placed as ``devices.plan_input`` decided."""
    from edgesmith.tfkeras.pipeline import eval_dataset, train_dataset

    both = {
        "num_classes": dataset.num_classes,
        "norm": norm,
        "prefetch_device": placement.prefetch_target,
    }
    train_ds = train_dataset(
        dataset.x_train,
        dataset.y_train,
        batch_size=config.batch_size,
        augment=augment,
        seed=config.seed,
        augment_on=placement.augment_on,
        **both,
    )
    return train_ds, eval_dataset(dataset.x_eval, dataset.y_eval, **both)
