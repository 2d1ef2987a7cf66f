"""The parity check: run the exported file with its own runtime and compare it with the source.

The file runs through ``edgesmith.runtime`` (LiteRT for .tflite, onnxruntime for .onnx) from
raw eval pixels, reading its preprocessing from the metadata embedded in the file, exactly as a
device would. The source's reference outputs are the Keras model's on the same pixels,
normalised as its manifest records.

Two kinds of file, two questions:

- **Float formats** must compute what the source computes: top-1 agreement and the max absolute
  difference of the outputs (in the unit the model outputs, ``tolerance.compared``) are bounded.
- **Quantised formats** change the arithmetic on purpose, so they are judged on what a user
  cares about: the file's accuracy may not be worse than the source's by more than a tolerance
  (``max_accuracy_drop``, percentage points, default 1.0). Top-1 agreement is a poor proxy: a
  good int8 file disagrees with its float source on 2-3% of the images it (and the source) find
  hard, and the agreement rate of a lightly trained model moves with the CPU's int8 kernels.

The accuracy decision rule (:func:`accuracy_drop_test`) uses the paired per-image correctness:
``b`` images the source gets right and the file wrong, ``c`` the reverse. Conditional on the
``d = b + c`` discordant images, McNemar's exact test is a binomial test on ``b``; here its null
hypothesis is "the drop is at most the tolerance" (``p_b - p_c <= tol``), which with the
observed discordance rate ``q = d/n`` puts ``b ~ Binomial(d, (q + tol) / 2q)`` at the boundary.
The file **fails** when that one-sided exact p-value is below ``ALPHA`` (0.05): the eval set
shows, beyond chance, a drop larger than the tolerance. A small eval set can therefore not fail
a good file by a chance excess of a few images, and a broken file (wrong input scale or zero
point, a corrupted weight tensor, wrong normalisation) loses tens of points, which even a few
hundred images demonstrate with p far below 0.05; agreement below ``CATASTROPHIC_AGREEMENT``
(0.5) fails outright. The verdict is a deterministic function of the outputs: no resampling.
The report carries the drop, its 95% interval (Wald, paired) and the p-value.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.export.formats import Tolerance

DEFAULT_MAX_ACCURACY_DROP = 1.0  # percentage points
ALPHA = 0.05
CATASTROPHIC_AGREEMENT = 0.5
Z95 = 1.959963984540054


def run_exported(
    path: Path, pixels: np.ndarray, *, xnnpack: bool = True, provider: str | None = None
) -> np.ndarray:
    """Float32 (N, K) outputs of an exported file for raw pixels, through edgesmith.runtime.

    ``provider="tflm"`` runs a .tflite file in TensorFlow Lite Micro's interpreter, the runtime
    a ``--target tflm`` file is made for (reference kernels: slower, and rounded its own way).

    Raises:
        EdgesmithError: when the runtime is not installed or cannot run the file.
    """
    try:
        from edgesmith import runtime
    except ImportError as exc:
        raise EdgesmithError(
            f"the parity check runs files with edgesmith.runtime ({exc}): "
            "pip install 'edgesmith[runtime]'"
        ) from None
    model = runtime.load(path, xnnpack=xnnpack, provider=provider)
    try:
        return np.asarray(model.predict(pixels), dtype=np.float32)
    finally:
        model.close()


def binomial_sf(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``, exactly (log-space sum, no scipy)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p
        + (n - i) * log_q
        for i in range(k, n + 1)
    ]  # fmt: skip
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def accuracy_drop_test(
    source_correct: np.ndarray,
    file_correct: np.ndarray,
    max_drop_points: float = DEFAULT_MAX_ACCURACY_DROP,
    *,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """Is the file's accuracy worse than the source's by more than ``max_drop_points``?

    See the module docstring for the decision rule (McNemar's exact test with a margin).

    Args:
        source_correct: per-image booleans, the source's top-1 is the label.
        file_correct: the same for the exported file, on the same images in the same order.
        max_drop_points: the tolerance, in percentage points.
        alpha: the one-sided significance level for declaring a drop beyond the tolerance.

    Returns:
        ``method``, ``n``, ``source_wrong_file_right`` (c), ``source_right_file_wrong`` (b),
        ``drop_points``, ``drop_interval_points`` (95%), ``max_drop_points``, ``p_value``,
        ``alpha``, ``verdict`` (``pass``/``fail``).
    """
    src = np.asarray(source_correct, dtype=bool)
    out = np.asarray(file_correct, dtype=bool)
    if src.shape != out.shape or src.ndim != 1 or src.size == 0:
        raise EdgesmithError("the accuracy test needs two equal, non-empty per-image vectors")
    n = int(src.size)
    b = int(np.sum(src & ~out))
    c = int(np.sum(~src & out))
    d = b + c
    tol = max_drop_points / 100.0
    drop = (b - c) / n
    q = d / n
    if d == 0 or q <= tol:
        p_value = 1.0  # a drop beyond the tolerance needs more discordant images than there are
    else:
        p_value = binomial_sf(b, d, min(1.0, (q + tol) / (2 * q)))
    spread = Z95 * math.sqrt(max(q - drop * drop, 0.0) / n)
    return {
        "method": "mcnemar-exact-one-sided-with-margin",
        "n": n,
        "source_right_file_wrong": b,
        "source_wrong_file_right": c,
        "drop_points": round(100 * drop, 4),
        "drop_interval_points": [round(100 * (drop - spread), 4), round(100 * (drop + spread), 4)],
        "max_drop_points": max_drop_points,
        "p_value": float(f"{p_value:.6g}"),
        "alpha": alpha,
        "verdict": "fail" if p_value < alpha else "pass",
    }


def compare(
    outputs: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray,
    tolerance: Tolerance,
    output_kind: str,
    *,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
) -> dict[str, Any]:
    """Parity metrics of ``outputs`` against the source's ``reference`` on the same images.

    A tolerance with a max-abs-diff bound (float formats) is judged on agreement and closeness;
    one without (quantised formats) on accuracy (:func:`accuracy_drop_test`, ``max_accuracy_drop``
    points) with a floor on agreement for catastrophic breakage.

    Returns:
        ``accuracy`` (of the exported file, a fraction), ``source_accuracy_eval`` (the source's
        on the same images), ``num_eval``, ``agreement``, ``max_abs_diff``, ``mean_abs_diff``,
        ``parity`` (``pass``/``fail``), ``tolerance``, for quantised formats ``accuracy_test``,
        and on failure ``parity_failures`` (which bound was missed, by how much).
    """
    if outputs.shape != reference.shape:
        raise EdgesmithError(
            f"the exported file outputs {outputs.shape[1:]} per image but the source "
            f"{reference.shape[1:]}"
        )
    labels = np.asarray(labels).reshape(-1)
    diff = np.abs(outputs.astype(np.float64) - reference.astype(np.float64))
    predicted = outputs.argmax(axis=1)
    source_predicted = reference.argmax(axis=1)
    agreement = float(np.mean(predicted == source_predicted))
    max_diff = float(diff.max()) if np.all(np.isfinite(diff)) else float("inf")
    bound = tolerance.bound(output_kind)
    failures = []
    if not agreement >= tolerance.min_agreement:
        failures.append(f"agreement {agreement:.4f} < {tolerance.min_agreement}")
    test = None
    if bound is not None:
        if not max_diff <= bound:
            failures.append(f"max abs diff {max_diff:.3g} > {bound:g}")
    else:
        test = accuracy_drop_test(
            source_predicted == labels, predicted == labels, max_accuracy_drop
        )
        if test["verdict"] == "fail":
            failures.append(
                f"accuracy {test['drop_points']:.2f} points below the source's (95% interval "
                f"{test['drop_interval_points'][0]:.2f} to {test['drop_interval_points'][1]:.2f}),"
                f" beyond the {max_accuracy_drop:g}-point tolerance (McNemar exact p = "
                f"{test['p_value']:.3g} < {test['alpha']})"
            )
    metrics: dict[str, Any] = {
        "accuracy": round(float(np.mean(predicted == labels)), 6),
        "source_accuracy_eval": round(float(np.mean(source_predicted == labels)), 6),
        "num_eval": int(len(labels)),
        "agreement": round(agreement, 6),
        "max_abs_diff": max_diff,
        "mean_abs_diff": float(diff.mean()),
        "parity": "fail" if failures else "pass",
        "tolerance": tolerance.to_dict(output_kind),
    }
    if test is not None:
        metrics["tolerance"]["max_accuracy_drop_points"] = max_accuracy_drop
        metrics["accuracy_test"] = test
    if failures:
        metrics["parity_failures"] = failures
    return metrics


@dataclasses.dataclass(frozen=True)
class ParityCheck:
    """How one exported file is run and judged: the same for its native and emulated checks.

    A file is checked here and then again on each ``--check-on`` CPU under the very same rule,
    so the settings travel together instead of as a keyword list repeated at every step.

    Attributes:
        tolerance: the format's parity bounds.
        output_kind: ``probabilities`` or ``logits``.
        xnnpack: run with XNNPack (False for sparse int8 files).
        provider: the runtime's provider (None: the runtime's CPU path; ``tflm``...).
        max_accuracy_drop: the parity rule's tolerance, in percentage points.
    """

    tolerance: Tolerance
    output_kind: str
    xnnpack: bool = True
    provider: str | None = None
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP

    def judge(
        self, outputs: np.ndarray, reference: np.ndarray, labels: np.ndarray
    ) -> dict[str, Any]:
        """:func:`compare` under this check's tolerance and accuracy rule."""
        return compare(
            outputs,
            reference,
            labels,
            self.tolerance,
            self.output_kind,
            max_accuracy_drop=self.max_accuracy_drop,
        )


def check_parity(
    path: Path, pixels: np.ndarray, labels: np.ndarray, reference: np.ndarray, check: ParityCheck
) -> tuple[dict[str, Any], np.ndarray]:
    """Run ``path`` on raw ``pixels`` with its runtime and compare with ``reference``.

    Returns:
        The parity metrics, and the file's own outputs (what an emulated run is held to).
    """
    outputs = run_exported(path, pixels, xnnpack=check.xnnpack, provider=check.provider)
    return check.judge(outputs, reference, labels), outputs
