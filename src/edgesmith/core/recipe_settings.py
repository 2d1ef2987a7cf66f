"""The training-recipe settings ``edgesmith train`` and every compress technique both take.

Each is declared once here, so that ``--batch-size``, ``--optimizer``, ``--lr`` and
``--weight-decay`` are checked, defaulted and explained alike wherever a model is trained or
fine-tuned. Each function returns a fresh :func:`~edgesmith.core.config.setting` field.
"""

from __future__ import annotations

from edgesmith.core.config import setting

OPTIMIZERS = ("sgd", "adam")


def batch_size() -> int:
    """Images per step."""
    return setting(128, "images per step", low=1)


def optimizer() -> str:
    """``sgd`` (Nesterov momentum) or ``adam``."""
    return setting("sgd", "sgd (Nesterov momentum) or adam", choices=OPTIMIZERS)


def learning_rate(default: str) -> float | None:
    """The peak learning rate (``--lr``); None picks a default, which ``default`` describes."""
    return setting(
        None, f"peak learning rate (default: {default})", flag="--lr", low=1e-8, high=10.0
    )


def weight_decay() -> float:
    """Decoupled weight decay per unit learning rate."""
    return setting(
        2.5e-3,
        "decoupled weight decay per unit learning rate, BatchNorm and biases excluded",
        low=0.0,
        high=1.0,
    )
