"""What both trainers record when a run ends: the resolved settings, the metrics, the artifact.

The tf_keras and the Keras 3 trainer train differently and publish the same artifact: this
module is that artifact's common part, so the two cannot drift apart. Framework-free.
"""

from __future__ import annotations

import shutil
from typing import Any

from edgesmith.core.artifacts import Artifact, ArtifactWriter
from edgesmith.core.datasets import Dataset
from edgesmith.core.manifest import DatasetRecord, Metrics, OutputRecord
from edgesmith.core.normalization import Normalization
from edgesmith.train.config import TrainConfig
from edgesmith.train.inputs import input_record


def history_metrics(history: list[dict], wall_seconds: float) -> dict[str, Any]:
    """The manifest's training metrics, summed over every epoch's record (resumed ones too)."""
    return {
        "train_seconds": round(sum(h["train_seconds"] for h in history), 2),
        "wall_seconds_this_session": round(wall_seconds, 2),
        "images_per_second": round(
            sum(h["images_per_second"] for h in history) / max(1, len(history)), 1
        ),
        "epochs": len(history),
    }


def publish_trained(
    writer: ArtifactWriter,
    config: TrainConfig,
    dataset: Dataset,
    norm: Normalization,
    *,
    model_file: str,
    source: str,
    kind: str,
    metrics: dict[str, Any],
    run_settings: dict[str, Any],
    **sections: Any,
) -> Artifact:
    """Commit the trained model written to ``writer.dir / model_file`` as a train artifact.

    What only a resume needed (``train_config.json``, the ``backup`` checkpoint) goes first.

    Args:
        writer: the open artifact writer.
        config: the run's settings.
        dataset: the data it trained and was evaluated on.
        norm: the input normalisation it was trained with.
        model_file: the saved model's name.
        source: ``zoo`` for a zoo model, else how the ``--model`` file was loaded.
        kind: what the model outputs (``probabilities`` or ``logits``).
        metrics: what was measured (the manifest's ``metrics``).
        run_settings: what the trainer resolved: ``augment_on``, ``strategy``, ``devices``.
        **sections: ``tool_versions`` and the trainer's own manifest sections (``history``,
            ``input_pipeline``, ...), as :meth:`ArtifactWriter.commit` takes them.
    """
    (writer.dir / "train_config.json").unlink()
    shutil.rmtree(writer.dir / "backup", ignore_errors=True)
    resolved = {
        **config.to_dict(),
        "learning_rate": config.peak_learning_rate,
        "augment": ",".join(config.augmentations(flip_ok=dataset.flip_ok)) or "none",
        "normalization": norm.to_dict(),
        **run_settings,
        "model_source": source,
    }
    from edgesmith.core.pretrained import find, is_zoo_model

    return writer.commit(
        model_files=[model_file],
        parent=find(config.model).artifact_id() if is_zoo_model(config.model) else None,
        stage="train",
        technique=config.model if source == "zoo" else "finetune",
        fmt="keras",
        config=resolved,
        input_spec=input_record(dataset, norm),
        labels=list(dataset.labels),
        dataset=DatasetRecord.from_dict(dataset.describe()),
        metrics=Metrics.from_dict(metrics),
        output=OutputRecord(kind=kind, shape=(dataset.num_classes,)),
        **sections,
    )
