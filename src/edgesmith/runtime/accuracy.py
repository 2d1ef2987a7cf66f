"""Accuracy of a loaded model on a dataset's eval split, through the same runner as the timing.

MLPerf's rule: accuracy must come from the code path that is timed, or a preprocessing bug in
one path goes unseen in the other. Images stream through in batches, so a large eval split costs
one batch of model inputs at a time.
"""

from __future__ import annotations

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import Reporter
from edgesmith.runtime.model import Model


def evaluate(
    model: Model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    class_names: list[str] | None = None,
    batch_size: int = 64,
    report: Reporter | None = None,
) -> dict:
    """Top-1 accuracy, per-class accuracy and the confusion matrix.

    Args:
        model: a loaded model.
        images: raw pixels (N, H, W, C).
        labels: class indices (N,).
        class_names: the dataset's names, for the per-class record (default: the model's).
        batch_size: images per runtime call.
        report: progress lines.

    Returns:
        ``{"accuracy", "num_eval", "per_class": {name: accuracy}, "confusion": [[...]]}`` with
        confusion rows = true class, columns = predicted class.

    Raises:
        EdgesmithError: when the dataset has more classes than the model has outputs.
    """
    report = report or (lambda line: None)
    num_classes = len(model.labels)
    if labels.size and int(labels.max()) >= num_classes:
        raise EdgesmithError(
            f"the data has class index {int(labels.max())} but {model.path.name} has only "
            f"{num_classes} outputs"
        )
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for start in range(0, len(images), batch_size):
        outputs = model.predict(images[start : start + batch_size], batch_size=batch_size)
        predicted = outputs.argmax(axis=1)
        np.add.at(confusion, (labels[start : start + batch_size], predicted), 1)
        if start and start % (batch_size * 50) == 0:
            report(f"  accuracy: {start}/{len(images)} images")
    names = list(class_names or model.labels)[:num_classes]
    names += [str(i) for i in range(len(names), num_classes)]
    support = confusion.sum(axis=1)
    per_class = {
        names[i]: (float(confusion[i, i] / support[i]) if support[i] else None)
        for i in range(num_classes)
    }
    total = int(confusion.sum())
    return {
        "accuracy": float(np.trace(confusion) / total) if total else None,
        "num_eval": total,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }
