import time

import numpy as np
import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime.timing import TimingPlan, block_size, measure, time_block


def busy(seconds):
    def step():
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    return step


def test_interleaved_rounds_meet_both_minimums_for_every_model():
    plan = TimingPlan(min_runs=40, min_seconds=0.06, warmup_runs=2, warmup_seconds=0.0, rounds=5)
    fast, slow = busy(20e-6), busy(200e-6)
    rounds = measure([fast, slow], plan)
    assert len(rounds[0]) == len(rounds[1]) >= 2  # paired
    for blocks in rounds:
        samples = np.concatenate(blocks)
        assert samples.size >= 40 and samples.sum() >= 60.0
    fast_ms, slow_ms = (float(np.median(np.concatenate(r))) for r in rounds)
    assert fast_ms == pytest.approx(0.02, rel=0.5)
    assert slow_ms / fast_ms == pytest.approx(10, rel=0.35)


def test_time_block_measures_each_call_in_ms():
    samples = time_block(busy(1e-3), 5)
    assert samples.shape == (5,)
    assert np.all(samples >= 1.0) and np.median(samples) < 5.0


def test_block_size_spreads_the_remaining_work_over_the_remaining_rounds():
    plan = TimingPlan(min_runs=1000, min_seconds=10.0, rounds=10)
    assert block_size(1.0, plan) == 1000  # time-bound: 10 s of 1 ms runs over 10 rounds
    assert block_size(100.0, plan) == 100  # count-bound
    assert block_size(1.0, plan, runs_done=1000, ms_done=10_000.0, rounds_done=10) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_runs": -1}, "min_runs must be a whole number"),
        ({"rounds": 1}, "rounds must be >= 2"),
        ({"min_seconds": -0.5}, "min_seconds must be a number >= 0"),
        ({"min_runs": 0, "min_seconds": 0}, "nothing would be timed"),
    ],
)
def test_bad_plans_are_refused(kwargs, match):
    with pytest.raises(EdgesmithError, match=match):
        TimingPlan(**kwargs)
