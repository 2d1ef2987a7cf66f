"""A fake clock for ``bench`` and ``check``: latencies decreed per model file, not measured.

Loaded by ``tests/runtime/conftest.py`` (the ``fake_bench_clock`` fixture) and, as source text,
by the pytest sessions that ``tests/app/test_pytest_plugin.py`` runs inside pytester: both time
the committed fixture models on this clock, so no verdict depends on the machine's CPU or load.
"""

from __future__ import annotations

import contextlib
import functools
import itertools

import pytest

from edgesmith.core.artifacts import sha256_file
from edgesmith.runtime import bench, regression, timing

# The same small spread in every file's runs (a run's cost times one of these, in turn), so
# that latencies have a spread while every ratio stays the ratio of the decreed costs.
SPREAD = (0.99, 0.995, 1.0, 1.005, 1.01)


class FakeClock:
    """Nanoseconds that pass only when a fixture model runs, by the file's decreed cost."""

    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now

    def timed(self, step, cost_ms):
        calls = itertools.count()

        def run():
            step()  # the real runner still runs: only the time it takes is decreed
            self.now += round(cost_ms * SPREAD[next(calls) % len(SPREAD)] * 1e6)

        return run


@contextlib.contextmanager
def fake_bench_clock(cost_ms):
    """Time ``bench`` and ``check`` on a :class:`FakeClock`, through timing's ``clock`` argument.

    ``cost_ms`` maps model files to what one inference costs; a model is known by its sha256,
    so a copy of a file costs what the file does. The real timing loop runs (warm-up, block
    sizes, interleaving, the minimums) and every model's step really runs, but each run advances
    the clock by its file's cost: paired ratios are the cost ratios.
    """
    clock = FakeClock()
    cost = {sha256_file(path): ms for path, ms in cost_ms.items()}
    real_open = bench.open_model

    def open_model(*args, **kwargs):
        loaded = real_open(*args, **kwargs)
        digest = sha256_file(loaded.model.path)
        assert digest in cost, f"{loaded.model.path} has no decreed cost: not a fixture file"
        loaded.step = clock.timed(loaded.step, cost[digest])
        return loaded

    with pytest.MonkeyPatch.context() as patch:
        for module in (bench, regression):  # the CLI cannot pass a clock: its modules get one
            patch.setattr(module, "open_model", open_model)
            patch.setattr(module, "measure", functools.partial(timing.measure, clock=clock))
        yield clock
