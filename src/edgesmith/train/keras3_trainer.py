"""The train stage on Keras 3: JAX, PyTorch or TensorFlow trains; the artifact is the same.

``edgesmith train --backend jax|torch|tensorflow`` lands here. The recipe is the tf_keras
trainer's (``keras3_recipe``), augmentation runs in the compiled step (``keras3_wrapper``), the zoo
is shared (``zoo.build_model(..., keras=keras)``), and the result is an ordinary train artifact: a
float32 ``model.keras`` that compress and export read through their Keras 3 -> tf_keras rebuild.
No TensorFlow is imported unless it is the chosen backend.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edgesmith.core.accuracy import accuracy_metrics
from edgesmith.core.artifacts import Artifact, ArtifactWriter, check_output_dir, read_artifact
from edgesmith.core.datasets import Dataset, load_dataset
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import InputPipeline, Training
from edgesmith.core.model_macs import count_macs
from edgesmith.core.normalization import Normalization
from edgesmith.core.progress import Reporter, stderr_reporter
from edgesmith.core.versions import tool_versions
from edgesmith.tfkeras.model_safety import model_code_trusted
from edgesmith.train import keras3_env, zoo
from edgesmith.train.config import TrainConfig
from edgesmith.train.inputs import resolve_normalization
from edgesmith.train.results import history_metrics, publish_trained

MODEL_FILE = "model.keras"  # the name every train artifact uses (tfkeras.model_io.MODEL_FILE)


def train_keras3(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    report: Reporter | None = None,
    trust_model: bool | None = None,
) -> Artifact:
    """Train with Keras 3 on ``config.backend`` and write a train artifact.

    Work happens in ``<out>.partial`` (a checkpoint after every epoch); ``resume=True`` continues
    an interrupted run from its last finished epoch.

    Args:
        config: the training settings (``config.backend`` is a Keras 3 backend).
        out: the new artifact directory (must not exist or be empty).
        resume: continue the interrupted run left in ``<out>.partial``.
        report: receives one progress line per epoch (stderr by default).
        trust_model: load ``--model``/``--teacher`` files outside Keras' safe mode (files that
            run code when loaded, such as Lambda layers); ``None`` follows
            :func:`edgesmith.tfkeras.model_safety.trusting_model_code` (off by default).

    Returns:
        The written artifact.

    Raises:
        EdgesmithError: for bad settings, data, model or teacher, before training starts.
    """
    report = report or stderr_reporter()
    trust_model = model_code_trusted(trust_model)
    check_output_dir(out)
    keras = keras3_env.import_keras(config.backend, config.accelerator)
    devices = keras3_env.find_devices(config.backend, config.accelerator)
    dataset = load_dataset(config.data)
    norm = resolve_normalization(config.normalization, dataset)
    augment = config.augmentations(flip_ok=dataset.flip_ok)
    parallel = keras3_env.use_all_gpus(keras, devices, config.batch_size)
    report(
        f"data {dataset.spec}: {len(dataset.y_train)} train / {len(dataset.y_eval)} eval "
        f"images {dataset.input_shape}, {dataset.num_classes} classes; {devices.description}"
    )
    report(f"normalise and augment ({', '.join(augment) or 'none'}) in the training step")

    from edgesmith.train import keras3_data, keras3_recipe
    from edgesmith.train.keras3_augment import crop_padding
    from edgesmith.train.keras3_callbacks import EpochHistory
    from edgesmith.train.keras3_wrapper import Trainee

    with ArtifactWriter(out, keep_if="backup", resume=resume) as writer:
        _check_resume(writer.dir, config.to_dict())
        keras.utils.set_random_seed(config.seed)
        history_path = writer.dir / "history.json"
        done = len(json.loads(history_path.read_text())) if history_path.is_file() else 0
        train_batches = keras3_data.ShuffledBatches(
            dataset.x_train,
            dataset.y_train,
            num_classes=dataset.num_classes,
            batch_size=config.batch_size,
            seed=config.seed,
            first_epoch=done,
        )
        steps = len(train_batches)
        keras.config.set_dtype_policy(config.precision)
        try:
            model, source = _build_or_load(keras, config, dataset, trust_model)
            sample = norm.apply(dataset.x_train[:32])
            kind = "probabilities" if source == "zoo" else output_kind(keras, model, sample)
            teacher, teacher_kind = (None, "probabilities")
            if config.teacher is not None:
                teacher, teacher_kind = load_teacher(
                    keras, config.teacher, dataset, norm, trust_model=trust_model
                )
            trainee = Trainee(
                model,
                norm=norm,
                augment=augment,
                pad=crop_padding(dataset.input_shape),
                seed=config.seed,
                model_logits=kind == "logits",
                teacher=teacher,
                teacher_logits=teacher_kind == "logits",
                alpha=config.alpha,
                temperature=config.temperature,
            )
            trainee(dataset.x_train[:2], training=False)  # builds the wrapper's variables
            trainee.compile(
                optimizer=keras3_recipe.make_optimizer(**config.optimizer_settings(steps)),
                loss=keras3_recipe.make_loss(
                    from_logits=kind == "logits", label_smoothing=config.label_smoothing
                ),
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                jit_compile=True if config.xla else "auto",
            )
        finally:
            keras.config.set_dtype_policy("float32")
        epoch_history = EpochHistory(
            epochs=config.epochs,
            num_train=steps * train_batches.batch_size,
            history_path=history_path,
            report=report,
        )
        callbacks = [
            keras.callbacks.BackupAndRestore(str(writer.dir / "backup")),
            epoch_history,
        ]
        if config.ema is not None:  # evaluate each epoch with the averaged weights
            callbacks.insert(0, keras.callbacks.SwapEMAWeights())
        gpus = len(devices.devices) if parallel else 1
        eval_x = dataset.x_eval
        eval_y = keras3_data.one_hot(dataset.y_eval, dataset.num_classes)
        report(
            f"model {config.model}: {model.count_params():,} params; {config.epochs} epochs of "
            f"{steps} steps of {train_batches.batch_size}"
            + (f"; EMA {config.ema}" if config.ema is not None else "")
            + (f"; teacher {config.teacher}" if teacher is not None else "")
        )
        started = time.perf_counter()
        trainee.fit(
            train_batches,
            epochs=config.epochs,
            validation_data=(eval_x, eval_y),
            validation_batch_size=keras3_data.eval_batch_size(
                len(eval_x), max(config.batch_size, 256), gpus
            ),
            callbacks=callbacks,
            verbose=0,
        )
        wall = time.perf_counter() - started
        history = epoch_history.history
        saved = float32_copy(keras, model) if config.precision != "float32" else model
        metrics = eval_metrics(saved, dataset, norm)
        metrics.update(_macs(saved))
        metrics.update({"params": int(saved.count_params()), **history_metrics(history, wall)})
        saved.save(writer.dir / MODEL_FILE)
        artifact = publish_trained(
            writer,
            config,
            dataset,
            norm,
            model_file=MODEL_FILE,
            source=source,
            kind=kind,
            metrics=metrics,
            run_settings={
                "augment_on": "device",
                "strategy": "data_parallel" if parallel else "single_device",
                "devices": list(devices.devices),
            },
            tool_versions={**tool_versions(), **keras3_env.keras3_versions()},
            input_pipeline=InputPipeline(augment_on="device", feed="uint8"),
            training=Training(
                keras=keras.__version__,
                backend=config.backend,
                device_kind=devices.kind,
                devices=tuple(devices.devices),
                precision=config.precision,
                data_parallel=parallel,
            ),
            history=history,
        )
    report(
        f"eval accuracy {metrics['accuracy']:.4f} on {metrics['num_eval']} images; "
        f"wrote {artifact.path}"
    )
    return artifact


def _check_resume(work: Path, settings: dict) -> None:
    saved = work / "train_config.json"
    if saved.is_file():
        before = json.loads(saved.read_text())
        changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        if changed:
            raise EdgesmithError(
                f"--resume: the interrupted run in {work} used different settings for "
                f"{', '.join(changed)}; resume with the same settings or start over"
            )
    saved.write_text(json.dumps(settings, indent=1))


def load_keras3_file(keras: ModuleType, path: str | Path, what: str, *, trust: bool = False):
    """Load a Keras 3 model file (compile=False; Keras' safe mode unless ``trust``).

    Raises:
        EdgesmithError: when the file is missing or Keras 3 cannot read it.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgesmithError(f"{what} {path}: file not found (expected a Keras 3 .keras file)")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=not trust)
    except Exception as exc:  # Keras raises many types for unreadable files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise EdgesmithError(
            f"{what} {path}: Keras 3 cannot load it ({type(exc).__name__}: {first})"
        ) from None


def _build_or_load(keras: ModuleType, config: TrainConfig, dataset: Dataset, trust: bool):
    if config.model in zoo.ZOO:
        return (
            zoo.build_model(
                config.model,
                dataset.input_shape,
                dataset.num_classes,
                keras=keras,
                widths=config.widths,
            ),
            "zoo",
        )
    model = load_keras3_file(keras, config.model_file, "--model", trust=trust)
    check_fits(model, dataset, f"--model {config.model}")
    if config.precision != "float32":
        model = with_policy(keras, model, config.precision)
    return model, "keras3"


def check_fits(model, dataset: Dataset, what: str) -> None:
    """Refuse a model whose input or output does not match the dataset.

    Raises:
        EdgesmithError: naming the model's and the data's shapes.
    """
    inputs = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    outputs = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    if inputs != tuple(dataset.input_shape) or outputs != dataset.num_classes:
        raise EdgesmithError(
            f"{what} takes {inputs} and gives {outputs} classes; the data has "
            f"{tuple(dataset.input_shape)} images and {dataset.num_classes} classes"
        )


def load_teacher(
    keras: ModuleType, where: str, dataset: Dataset, norm: Normalization, *, trust_model: bool
):
    """The frozen teacher from a ``.keras`` file or a train artifact directory, and its kind.

    Raises:
        EdgesmithError: when it cannot be read, does not fit the data, or (for an artifact)
            expects differently normalised inputs.
    """
    path = Path(where)
    if path.is_dir():
        artifact = read_artifact(path)
        recorded = artifact.input_spec.normalization
        if recorded is not None and recorded != norm:
            raise EdgesmithError(
                f"--teacher {where} expects inputs normalised as {recorded.to_dict()}; this run "
                f"normalises as {norm.to_dict()}: train both with the same --normalization"
            )
        path = artifact.model_path
    teacher = load_keras3_file(keras, path, "--teacher", trust=trust_model)
    check_fits(teacher, dataset, f"--teacher {where}")
    teacher.trainable = False
    return teacher, output_kind(keras, teacher, norm.apply(dataset.x_train[:32]))


def output_kind(keras: ModuleType, model, sample: np.ndarray) -> str:
    """``probabilities`` when every output row is non-negative and sums to 1, else ``logits``."""
    out = keras.ops.convert_to_numpy(model(sample, training=False)).astype(np.float64)
    if np.all(out >= 0) and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3):
        return "probabilities"
    return "logits"


def _replace_policies(node: Any, name: str) -> Any:
    if isinstance(node, list):
        return [_replace_policies(v, name) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
        return name
    return {k: _replace_policies(v, name) for k, v in node.items()}


def with_policy(keras: ModuleType, model, name: str):
    """The same model and weights with every layer on the dtype policy ``name``.

    Mixed-precision training keeps float32 variables, so ``float32`` loses nothing and gives the
    float32 file the converters expect.
    """
    copy = type(model).from_config(_replace_policies(model.get_config(), name))
    copy.set_weights(model.get_weights())
    return copy


def float32_copy(keras: ModuleType, model):
    """``with_policy(model, "float32")``: what is saved after mixed-precision training."""
    return with_policy(keras, model, "float32")


def _macs(model) -> dict:
    """``{"macs": N}``, or nothing where a layer's shape is unknown (a subclassed model)."""
    try:
        return {"macs": count_macs(model, strict=True)}
    except ValueError:
        return {}


def eval_metrics(model, dataset: Dataset, norm: Normalization, batch_size: int = 500) -> dict:
    """Top-1 accuracy and its count on the eval split, plus per-class accuracy."""
    from keras import ops

    outputs = []
    for start in range(0, len(dataset.x_eval), batch_size):
        batch = norm.apply(dataset.x_eval[start : start + batch_size])
        outputs.append(ops.convert_to_numpy(model(batch, training=False)))
    return accuracy_metrics(np.concatenate(outputs), dataset)
