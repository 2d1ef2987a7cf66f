"""The timing loop: warm-up, then interleaved rounds until enough runs and enough seconds.

Following TFLite's ``benchmark_model`` (warm-up runs plus a time floor) and MLPerf (a minimum
count and a minimum duration), with one addition: several models are timed in interleaved
rounds, a block of runs each per round, the order reversed every other round, so that drift on
a shared machine (another job starting, the CPU clock changing) hits every model alike and
the per-round pairs can be compared.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from edgesmith.core.config import Config, setting
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import Reporter

Step = Callable[[], object]
# A monotonic clock in whole nanoseconds: ``time.perf_counter_ns``, or a test's fake one.
Clock = Callable[[], int]


@dataclasses.dataclass(frozen=True)
class TimingPlan(Config):
    """How long to measure.

    Attributes:
        min_runs: timed runs per model, at least (MLPerf single-stream asks 1,024).
        min_seconds: timed seconds per model, at least.
        warmup_runs: untimed runs per model before timing, at least.
        warmup_seconds: untimed seconds per model before timing, at least.
        rounds: interleaved rounds to aim for (more rounds, finer pairing; at least 2).
    """

    min_runs: int = setting(1000, "timed runs per model", low=0, high=10_000_000)
    min_seconds: float = setting(
        10.0, "timed seconds per model", metavar="S", low=0.0, high=86_400.0
    )
    warmup_runs: int = setting(10, "untimed runs per model first", low=0, high=10_000_000)
    warmup_seconds: float = setting(
        0.5, "untimed seconds per model first", metavar="S", low=0.0, high=86_400.0
    )
    rounds: int = setting(30, "interleaved rounds to aim for", flag="", low=2, high=10_000)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_runs < 1 and self.min_seconds <= 0:
            raise EdgesmithError("give min_runs >= 1 or min_seconds > 0: nothing would be timed")


def time_block(step: Step, runs: int, clock: Clock = time.perf_counter_ns) -> np.ndarray:
    """Time ``runs`` calls of ``step`` one by one on ``clock``; milliseconds, float64."""
    out = np.empty(runs, dtype=np.int64)
    for i in range(runs):
        start = clock()
        step()
        out[i] = clock() - start
    return out / 1e6


def warm_up(
    step: Step, runs: int, seconds: float, clock: Clock = time.perf_counter_ns
) -> np.ndarray:
    """Run untimed-for-the-record until both ``runs`` and ``seconds`` (on ``clock``) are reached.

    Returns:
        The warm-up latencies (ms): the second half estimates the steady state.
    """
    samples = []
    start = clock()
    while len(samples) < max(runs, 1) or (clock() - start) / 1e9 < seconds:
        samples.append(time_block(step, 1, clock)[0])
    return np.asarray(samples)


def block_size(
    estimate_ms: float,
    plan: TimingPlan,
    *,
    runs_done: int = 0,
    ms_done: float = 0.0,
    rounds_done: int = 0,
) -> int:
    """Runs for the next block so that the remaining rounds meet both minimums.

    Re-evaluated every round from the latency seen so far, so a warm-up estimate that was off
    (a cold cache, a burst of load) does not cut the number of rounds short.
    """
    left = max(plan.rounds - rounds_done, 1)
    by_count = math.ceil(max(plan.min_runs - runs_done, 0) / left)
    ms_left = max(plan.min_seconds * 1000.0 - ms_done, 0.0)
    by_time = math.ceil(ms_left / (left * max(estimate_ms, 1e-6)))
    return max(1, by_count, by_time)


def measure(
    steps: Sequence[Step],
    plan: TimingPlan,
    report: Reporter | None = None,
    *,
    clock: Clock = time.perf_counter_ns,
) -> list[list[np.ndarray]]:
    """Time several models in interleaved rounds.

    Args:
        steps: one zero-argument inference call per model (see ``Runner.step``).
        plan: warm-up and minimums.
        report: progress lines (every few seconds).
        clock: what the runs, the warm-up and the minimum seconds are timed on (a test passes
            a fake clock that its steps advance, so that a verdict never rests on this CPU).

    Returns:
        For each model, its per-round blocks of latencies in milliseconds; each model has at
        least ``plan.min_runs`` runs and ``plan.min_seconds`` of timed inference, and all models
        have the same number of rounds (so rounds pair up).
    """
    report = report or (lambda line: None)
    estimates = []
    for step in steps:
        warm = warm_up(step, plan.warmup_runs, plan.warmup_seconds, clock)
        estimates.append(float(np.median(warm[len(warm) // 2 :])))
    rounds: list[list[np.ndarray]] = [[] for _ in steps]
    counts = [0] * len(steps)
    totals = [0.0] * len(steps)
    order = list(range(len(steps)))
    last_report = clock()
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()  # a collection inside a timed run is the harness's noise, not the model's
    try:
        while (
            min(counts) < plan.min_runs
            or min(totals) < plan.min_seconds * 1000.0
            or len(rounds[0]) < 2
        ):
            for index in order:
                if rounds[index]:  # the mean so far converts the time still needed into runs
                    estimates[index] = totals[index] / counts[index]
                size = block_size(
                    estimates[index],
                    plan,
                    runs_done=counts[index],
                    ms_done=totals[index],
                    rounds_done=len(rounds[index]),
                )
                block = time_block(steps[index], size, clock)
                rounds[index].append(block)
                counts[index] += block.size
                totals[index] += float(block.sum())
            order.reverse()
            if (clock() - last_report) / 1e9 > 3.0:
                last_report = clock()
                done = min(
                    min(c / max(plan.min_runs, 1) for c in counts),
                    min(t / max(plan.min_seconds * 1000.0, 1e-9) for t in totals),
                )
                report(f"  timing: round {len(rounds[0])}, {min(100.0, 100.0 * done):.0f}%")
    finally:
        if enabled:
            gc.enable()
    return rounds
