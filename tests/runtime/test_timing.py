import itertools
import time

import numpy as np
import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime.timing import TimingPlan, block_size, measure, time_block, warm_up


def busy(seconds):
    def step():
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    return step


class FakeClock:
    """Nanoseconds that pass only when a fake step runs: timings that no CPU or load can shift."""

    def __init__(self):
        self.now = 0
        self.calls = []

    def __call__(self):
        return self.now

    def step(self, ms, name=None):
        def run():
            self.calls.append(name)
            self.now += round(ms * 1e6)

        return run


def test_interleaved_rounds_meet_both_minimums_for_every_model():
    clock = FakeClock()
    plan = TimingPlan(min_runs=40, min_seconds=0.06, warmup_runs=2, warmup_seconds=0.0, rounds=5)
    fast, slow = clock.step(0.02, "fast"), clock.step(0.2, "slow")
    rounds = measure([fast, slow], plan, clock=clock)
    assert len(rounds[0]) == len(rounds[1]) >= 2  # paired
    for blocks in rounds:
        samples = np.concatenate(blocks)
        assert samples.size >= 40 and samples.sum() >= 60.0
    fast_ms, slow_ms = (float(np.median(np.concatenate(r))) for r in rounds)
    assert fast_ms == pytest.approx(0.02) and slow_ms == pytest.approx(0.2)
    # the seconds minimum binds the fast model (0.06 s of 0.02 ms runs), not the count
    assert np.concatenate(rounds[0]).size >= 3000
    # interleaved, the order reversed every other round (fast, slow | slow, fast | fast, slow),
    # so the blocks either side of a turn run back to back
    runs = [len(list(group)) for _, group in itertools.groupby(clock.calls[2 + 2 :])]
    fast_sizes, slow_sizes = ([block.size for block in r] for r in rounds)
    assert runs[:3] == [fast_sizes[0], slow_sizes[0] + slow_sizes[1], fast_sizes[1] + fast_sizes[2]]


def test_the_warm_up_meets_its_seconds_on_the_clock_it_is_given():
    clock = FakeClock()
    samples = warm_up(clock.step(2.0), runs=1, seconds=0.01, clock=clock)
    assert samples.size == 5 and np.all(samples == 2.0)


def test_time_block_measures_each_call_in_ms():
    clock = FakeClock()
    samples = time_block(clock.step(1.5), 5, clock)
    assert samples.shape == (5,) and np.all(samples == 1.5)


def test_time_block_defaults_to_the_real_clock():
    samples = time_block(busy(1e-3), 3)
    assert samples.shape == (3,) and np.all(samples >= 1.0)  # a busy millisecond is never less


def test_block_size_spreads_the_remaining_work_over_the_remaining_rounds():
    plan = TimingPlan(min_runs=1000, min_seconds=10.0, rounds=10)
    assert block_size(1.0, plan) == 1000  # time-bound: 10 s of 1 ms runs over 10 rounds
    assert block_size(100.0, plan) == 100  # count-bound
    assert block_size(1.0, plan, runs_done=1000, ms_done=10_000.0, rounds_done=10) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_runs": -1}, r"min_runs must be in \[0, 10000000\]"),
        ({"min_runs": 1.5}, "min_runs must be a whole number"),
        ({"rounds": 1}, r"rounds must be in \[2, 10000\]"),
        ({"min_seconds": -0.5}, r"min_seconds must be in \[0.0, 86400.0\]"),
        ({"min_seconds": 10**9}, r"min_seconds must be in \[0.0, 86400.0\]"),
        ({"min_runs": 0, "min_seconds": 0}, "nothing would be timed"),
    ],
)
def test_bad_plans_are_refused(kwargs, match):
    with pytest.raises(EdgesmithError, match=match):
        TimingPlan(**kwargs)
