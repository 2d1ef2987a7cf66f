"""The parity check: run the exported file with its own runtime and compare it with the source.

The file runs through ``edgesmith.runtime`` (LiteRT for .tflite, onnxruntime for .onnx) from
raw eval pixels, reading its preprocessing from the metadata embedded in the file, exactly as a
device would. The source's reference outputs are the Keras model's on the same pixels,
normalised as its manifest records. Compared: top-1 agreement, and max/mean absolute
difference of the (dequantised) outputs, in the unit the model outputs (probabilities or
logits, recorded as ``tolerance.compared``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgesmith.errors import EdgesmithError
from edgesmith.export.formats import Tolerance


def run_exported(path: Path, pixels: np.ndarray, *, xnnpack: bool = True) -> np.ndarray:
    """Float32 (N, K) outputs of an exported file for raw pixels, through edgesmith.runtime.

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
    model = runtime.load(path, xnnpack=xnnpack)
    try:
        return np.asarray(model.predict(pixels), dtype=np.float32)
    finally:
        model.close()


def compare(
    outputs: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray,
    tolerance: Tolerance,
    output_kind: str,
) -> dict[str, Any]:
    """Parity metrics of ``outputs`` against the source's ``reference`` on the same images.

    Returns:
        ``accuracy`` (of the exported file), ``num_eval``, ``agreement``, ``max_abs_diff``,
        ``mean_abs_diff``, ``parity`` (``pass``/``fail``), ``tolerance`` and, on failure,
        ``parity_failures`` (which bound was missed, by how much).
    """
    if outputs.shape != reference.shape:
        raise EdgesmithError(
            f"the exported file outputs {outputs.shape[1:]} per image but the source "
            f"{reference.shape[1:]}"
        )
    diff = np.abs(outputs.astype(np.float64) - reference.astype(np.float64))
    predicted = outputs.argmax(axis=1)
    agreement = float(np.mean(predicted == reference.argmax(axis=1)))
    max_diff = float(diff.max()) if np.all(np.isfinite(diff)) else float("inf")
    failures = []
    if not agreement >= tolerance.min_agreement:
        failures.append(f"agreement {agreement:.4f} < {tolerance.min_agreement}")
    bound = tolerance.bound(output_kind)
    if bound is not None and not max_diff <= bound:
        failures.append(f"max abs diff {max_diff:.3g} > {bound:g}")
    metrics = {
        "accuracy": round(float(np.mean(predicted == labels)), 6),
        "num_eval": int(len(labels)),
        "agreement": round(agreement, 6),
        "max_abs_diff": max_diff,
        "mean_abs_diff": float(diff.mean()),
        "parity": "fail" if failures else "pass",
        "tolerance": tolerance.to_dict(output_kind),
    }
    if failures:
        metrics["parity_failures"] = failures
    return metrics


def check_parity(
    path: Path,
    pixels: np.ndarray,
    labels: np.ndarray,
    reference: np.ndarray,
    tolerance: Tolerance,
    output_kind: str,
    *,
    xnnpack: bool = True,
) -> dict[str, Any]:
    """Run ``path`` on raw ``pixels`` with its runtime and compare with ``reference``."""
    outputs = run_exported(path, pixels, xnnpack=xnnpack)
    return compare(outputs, reference, labels, tolerance, output_kind)
