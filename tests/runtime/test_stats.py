import numpy as np
import pytest

from edgesmith.runtime.regression import Status, accuracy_status, latency_status
from edgesmith.runtime.stats import paired_ratio, ratio_to_stored, summarize, wilson_interval


def rounds(rng, base, factor, n_rounds=20, runs=200, drift=0.0, noise=0.05):
    """Latency blocks: lognormal noise, optional drift shared by both models per round."""
    out = []
    for i in range(n_rounds):
        level = base * factor * (1 + drift * np.sin(i))
        out.append(level * rng.lognormal(0.0, noise, runs) + rng.exponential(base * 0.02, runs))
    return out


def test_summary_matches_numpy():
    x = np.random.default_rng(0).gamma(4.0, 0.05, 5000)
    s = summarize(x)
    assert s["runs"] == 5000
    assert s["p50"] == pytest.approx(np.median(x))
    assert s["p90"] == pytest.approx(np.percentile(x, 90))
    assert s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    assert s["std"] == pytest.approx(x.std(ddof=1))


def test_paired_ratio_finds_a_15_percent_slowdown_despite_drift():
    rng = np.random.default_rng(1)
    shared = np.random.default_rng(2)
    drift = [1 + 0.3 * shared.random() for _ in range(20)]  # both models see the same drift
    ref = [d * b for d, b in zip(drift, rounds(rng, 0.25, 1.0), strict=True)]
    cand = [d * b for d, b in zip(drift, rounds(rng, 0.25, 1.15), strict=True)]
    estimate = paired_ratio(cand, ref)
    assert estimate.ratio == pytest.approx(1.15, abs=0.02)
    assert estimate.low > 1.10 and estimate.low <= estimate.ratio <= estimate.high
    assert latency_status(estimate, 1.10) == "regression"


def test_unchanged_and_faster_models_pass():
    rng = np.random.default_rng(3)
    same = paired_ratio(rounds(rng, 0.25, 1.0), rounds(rng, 0.25, 1.0))
    assert same.low <= 1.0 <= same.high or abs(same.ratio - 1) < 0.01
    assert latency_status(same, 1.10) == "ok"
    faster = paired_ratio(rounds(rng, 0.25, 0.8), rounds(rng, 0.25, 1.0))
    assert faster.ratio == pytest.approx(0.8, abs=0.02)
    assert latency_status(faster, 1.10) == "ok"


def test_a_slowdown_too_noisy_to_call_is_not_a_regression():
    rng = np.random.default_rng(4)
    cand = rounds(rng, 0.25, 1.12, n_rounds=4, runs=3, noise=0.6)
    ref = rounds(rng, 0.25, 1.0, n_rounds=4, runs=3, noise=0.6)
    estimate = paired_ratio(cand, ref)
    # a real 12% slowdown, but four noisy rounds: the interval spans 1.0, so it is never called
    assert estimate.low < 1.0 < estimate.high
    assert latency_status(estimate, 1.10) != "regression"
    from edgesmith.runtime.stats import RatioEstimate

    assert latency_status(RatioEstimate(1.2, 0.95, 1.5, 0.95, 4), 1.10) == "noisy"
    assert latency_status(RatioEstimate(1.2, 1.05, 1.3, 0.95, 4), 1.10) == "regression"
    assert latency_status(RatioEstimate(1.05, 1.02, 1.08, 0.95, 4), 1.10) == "ok"


def test_ratio_to_a_stored_median():
    rng = np.random.default_rng(5)
    cand = rounds(rng, 0.25, 1.0)
    estimate = ratio_to_stored(cand, 0.25 / 1.3)
    assert estimate.ratio == pytest.approx(1.3, rel=0.03)
    assert latency_status(estimate, 1.10) == "regression"
    single = ratio_to_stored(cand[:1], float(np.median(cand[0])))
    assert single.ratio == pytest.approx(1.0) and single.rounds == 1


def test_paired_ratio_needs_paired_rounds():
    with pytest.raises(ValueError, match="same number of rounds"):
        paired_ratio([np.ones(3)] * 3, [np.ones(3)] * 2)
    with pytest.raises(ValueError, match="at least 2 rounds"):
        paired_ratio([np.ones(3)], [np.ones(3)])


def test_accuracy_verdicts():
    # percentages and a tolerance in percentage points
    assert accuracy_status(90.0, 90.5, 1.0) == (Status.OK, "")
    assert accuracy_status(89.0, 90.5, 1.0) == (Status.REGRESSION, "")
    assert accuracy_status(89.5, 90.5, 1.0) == (Status.OK, "")  # exactly at the limit passes
    assert accuracy_status(None, 90.0, 1.0) == (Status.SKIPPED, "not measured")
    status, reason = accuracy_status(90.0, None, 1.0)
    assert status is Status.SKIPPED and reason.startswith("the baseline has no accuracy")
    assert not status.decided and Status.NOT_ASKED.decided


@pytest.mark.parametrize(
    ("correct", "total", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),  # Newcombe (1998), Statistics in Medicine 17:857, method 3
        (15, 148, 0.0624, 0.1605),  # the same table
        (0, 10, 0.0, 0.2775),  # it stays inside [0, 1] where the normal approximation does not
        (174, 200, 0.8163, 0.9097),  # MLCommons' int8 ResNet-8 on MLPerf Tiny's 200 images
    ],
)
def test_wilson_interval_matches_published_values(correct, total, low, high):
    got = wilson_interval(correct, total)
    assert got == pytest.approx((low, high), abs=5e-4)


def test_wilson_interval_narrows_with_more_images_and_refuses_nonsense():
    small, large = wilson_interval(174, 200), wilson_interval(8700, 10000)
    assert small[1] - small[0] > 5 * (large[1] - large[0])
    assert wilson_interval(10, 10)[1] <= 1.0
    for bad in ((3, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError, match="Received"):
            wilson_interval(*bad)
