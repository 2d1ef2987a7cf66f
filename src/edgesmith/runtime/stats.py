"""Latency statistics and the confidence interval on a ratio of medians (pure numpy).

Latency distributions on a shared machine are skewed and heavy-tailed, so the summaries are
percentiles and the comparisons are on medians, with a bootstrap over paired rounds: each round
timed both models back to back, so resampling whole rounds keeps the pairing that cancels drift.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

PERCENTILES = (50, 90, 99)


def summarize(samples_ms: np.ndarray) -> dict[str, float | int]:
    """The bench schema's ``latency_ms`` record: p50, p90, p99, mean, std, min, max, runs."""
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no latency samples to summarize")
    p50, p90, p99 = np.percentile(x, PERCENTILES)
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "min": float(x.min()),
        "max": float(x.max()),
        "runs": int(x.size),
    }


@dataclasses.dataclass(frozen=True)
class RatioEstimate:
    """A candidate/reference latency ratio with its confidence interval.

    Attributes:
        ratio: the point estimate (median over rounds of per-round median ratios).
        low: lower confidence bound.
        high: upper confidence bound.
        confidence: the interval's level, e.g. 0.95.
        rounds: paired rounds behind it (1 for a comparison against a stored number).
    """

    ratio: float
    low: float
    high: float
    confidence: float
    rounds: int


def paired_ratio(
    candidate_rounds: list[np.ndarray],
    reference_rounds: list[np.ndarray],
    *,
    confidence: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> RatioEstimate:
    """Median latency ratio candidate/reference, bootstrapped over paired rounds.

    Each round holds a block of candidate runs and a block of reference runs timed back to back,
    so slow drift (another process, frequency scaling) hits both alike and the per-round ratio
    of medians cancels it. The estimate is the median of per-round ratios; its interval is the
    percentile bootstrap of that median, resampling rounds with replacement.

    Raises:
        ValueError: when the rounds are not paired or fewer than 2.
    """
    if len(candidate_rounds) != len(reference_rounds):
        raise ValueError("candidate and reference need the same number of rounds")
    if len(candidate_rounds) < 2:
        raise ValueError("a paired comparison needs at least 2 rounds")
    ratios = np.array(
        [
            np.median(c) / np.median(r)
            for c, r in zip(candidate_rounds, reference_rounds, strict=True)
        ]
    )
    return _bootstrap_median(ratios, confidence, resamples, seed)


def ratio_to_stored(
    candidate_rounds: list[np.ndarray],
    stored_median: float,
    *,
    confidence: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> RatioEstimate:
    """Median latency ratio of fresh rounds against a stored median (no reference at hand).

    The interval covers only this run's noise, not the baseline's or the drift between the two
    sessions: it is narrower than the truth, which the verdict text says.
    """
    ratios = np.array([np.median(c) / stored_median for c in candidate_rounds])
    if ratios.size == 1:
        value = float(ratios[0])
        return RatioEstimate(value, value, value, confidence, 1)
    return _bootstrap_median(ratios, confidence, resamples, seed)


def _bootstrap_median(
    ratios: np.ndarray, confidence: float, resamples: int, seed: int
) -> RatioEstimate:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, ratios.size, size=(resamples, ratios.size))
    medians = np.median(ratios[picks], axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(medians, [tail, 1.0 - tail])
    return RatioEstimate(float(np.median(ratios)), float(low), float(high), confidence, ratios.size)


def wilson_interval(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of ``correct`` out of ``total`` (95% by default).

    An accuracy on 200 images (MLPerf Tiny's evaluation set) is uncertain by several points and
    one on 10,000 by about one; Wilson's interval says so without the normal approximation's
    failure near 0 and 1 (it never leaves [0, 1], even at 200/200).

    Raises:
        ValueError: for ``total < 1`` or ``correct`` outside ``[0, total]``.
    """
    if total < 1 or not 0 <= correct <= total:
        raise ValueError(f"expected 0 <= correct <= total, total >= 1. Received: {correct}/{total}")
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)
