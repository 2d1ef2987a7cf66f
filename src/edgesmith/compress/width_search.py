"""Latency-guided channel widths: take channels away where they cost the most time per capacity.

Equal pruning fractions with a MAC target are a poor way to reach a latency budget. On this
project's x86 machine (bench/RESULTS.md, "Channel widths vs int8 latency") XNNPACK's int8 kernels
work on tiles of channels, so 11 channels cost what 16 do, and the same MAC count runs at very
different speeds depending on where it sits: ResNet-8 at widths 16,8,16,16,40,40 keeps 43% of the
MACs at 0.63x the dense latency, while 8,8,24,24,40,40 keeps 38% of them at 0.66x. So this search
measures instead of modelling: it converts candidate thin models to full-int8 .tflite and times
them, interleaved with the source model, on the machine it runs on.

Greedy: starting from the source widths, each step tries shrinking every group by one step
(``round_to`` channels, or an eighth of the group when ``round_to`` is 1), times all candidates
together, and keeps the one that saves the most latency per unit of capacity it removes, capacity
being the mean of the MAC and parameter fractions, scaled by size / width after the step (the
last channels of a group cost more than its first). (Per MAC alone, ResNet-8's search emptied the
stage-3 inner conv to 16 of 64 channels first: its MACs are few and cheap to drop, but it holds a
third of the weights.) Once the latency holds, the steps left go to the MAC and parameter targets
(``min_mac_reduction``, ``min_param_reduction``): the candidate that closes most of what is left
of them per unit of capacity removed. Without a parameter target the latency-led widths keep the
late, low-resolution layers whole, and those hold most of the weights: on ResNet-8 the file stayed
at ~70% of the dense one. It stops once every target holds, the latency confirmed by timing the
chosen widths once more (a candidate picked as the fastest of a noisy batch is optimistic). Each
step costs one conversion per group and half a second of timing per candidate: 2-4 minutes in all
for ResNet-8, much more for a model with dozens of groups. It does not predict accuracy, and the
file size only through the parameter count. Latency is the machine's own: run it on (or like) the
target device.
"""

from __future__ import annotations

import dataclasses
import gc
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from edgesmith.compress.channel_graph import ChannelPlan
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import Reporter
from edgesmith.core.wrappers import Closeable
from edgesmith.tfkeras.backend import keras

#: ``{group index: channels}``: the width of every prunable group
Widths = dict[int, int]
#: latency of each width set relative to the source model, measured together
Measure = Callable[[Sequence[Widths]], list[float]]

MAX_STEPS = 500


@dataclasses.dataclass
class SearchResult:
    """The chosen widths and how the search got there.

    Attributes:
        widths: channels per prunable group index.
        latency_ratio: the chosen widths' int8 latency over the source's (the confirming
            measurement).
        mac_ratio: the chosen widths' MACs over the source's.
        steps: one record per step: the group shrunk, its new width, latency, MAC (and
            parameter) ratios.
        param_ratio: the chosen widths' parameters over the source's (None when the search
            did not count them).
    """

    widths: Widths
    latency_ratio: float
    mac_ratio: float
    steps: list[dict]
    param_ratio: float | None = None


def next_width(width: int, size: int, round_to: int) -> int | None:
    """One step down from ``width``, or None when the group is at its minimum.

    The step is to the next lower multiple of ``round_to``, or an eighth of the group's
    ``size`` when ``round_to`` is 1.
    """
    if round_to > 1:
        smaller = (width - 1) // round_to * round_to
        return smaller if smaller >= round_to else None
    smaller = width - max(1, size // 8)
    return smaller if smaller >= 1 else None


def search_widths(
    plan: ChannelPlan,
    *,
    macs_of: Callable[[Widths], int],
    measure: Measure,
    params_of: Callable[[Widths], int] | None = None,
    max_latency_ratio: float,
    min_mac_reduction: float = 0.0,
    min_param_reduction: float = 0.0,
    round_to: int = 8,
    report: Reporter | None = None,
    names: dict[int, str] | None = None,
) -> SearchResult:
    """Shrink channel groups greedily until the latency, MAC and parameter targets hold.

    Args:
        plan: the analysed model (its prunable groups and their sizes).
        macs_of: MACs of the model at given widths.
        params_of: parameters of the model at given widths; when given, a step's cost is the
            mean of the MAC and parameter fractions it removes (times size / width after the
            step), so that layers holding most of the weights (late, low-resolution stages)
            are not emptied for their cheap MACs.
        measure: latency ratios of width sets against the source, timed together.
        max_latency_ratio: stop when the latency is at most this fraction of the source's.
        min_mac_reduction: and the MACs are down by at least this fraction.
        min_param_reduction: and the parameters (what an int8 file mostly holds) by at least
            this fraction; needs ``params_of``.
        round_to: widths stay multiples of this (1: steps of an eighth of each group).
        report: one progress line per step.
        names: readable group names for the progress lines.

    Returns:
        The widths, their measured ratios (the latency from a confirming measurement of the
        chosen widths alone against the source) and the steps taken.

    Raises:
        EdgesmithError: naming the target missed when every group is at its minimum, or when
            the search runs out of steps.
    """
    if min_param_reduction and params_of is None:
        raise ValueError("min_param_reduction needs params_of")
    report = report or (lambda line: None)
    sizes = {g: plan.groups[g].size for g in plan.prunable()}
    names = names or {g: plan.groups[g].name for g in sizes}
    widths: Widths = dict(sizes)
    macs_of = _memo(macs_of)  # each step asks for the same counts once per candidate
    params_of = _memo(params_of) if params_of else None
    base_macs = macs_of(widths)
    base_params = params_of(widths) if params_of else 0

    def cost(before: Widths, after: Widths) -> float:
        """The capacity a step removes, scaled by how thin its group gets.

        The MAC fraction, averaged with the parameter one, times size / width after the step:
        the last channels of a group matter more than its first, and without this the cheapest
        group is emptied before any other is touched.
        """
        macs = max(macs_of(before) - macs_of(after), 1) / base_macs
        if params_of:
            macs = (macs + max(params_of(before) - params_of(after), 1) / base_params) / 2
        group = next(g for g in after if after[g] != before[g])
        return macs * sizes[group] / after[group]

    mac_goal = (1.0 - min_mac_reduction) * base_macs
    param_goal = (1.0 - min_param_reduction) * base_params
    steps: list[dict] = []

    def gaps(at: Widths) -> list[tuple[Callable[[Widths], int], float]]:
        """The counts still above their goal: (counter, how far above) for MACs, parameters."""
        open_ = [(macs_of, macs_of(at) - mac_goal)]
        if params_of:
            open_.append((params_of, params_of(at) - param_goal))
        return [(count, gap) for count, gap in open_ if gap > 0]

    def done(lat: float, at: Widths) -> bool:
        return lat <= max_latency_ratio and not gaps(at)

    def score(before: Widths, after: Widths, saved: float, open_: list) -> tuple[float, float]:
        """Latency saved per capacity while the latency is over; then progress on ``open_``.

        Ties (no candidate saves time, or several close the gaps alike) go to the cheaper
        step, then to the faster one.
        """
        price = cost(before, after)
        if not open_:
            return max(saved, 0.0) / price, -price
        progress = sum(min((count(before) - count(after)) / gap, 1.0) for count, gap in open_)
        return round(progress / price, 9), saved

    def unreachable(lat: float, at: Widths) -> EdgesmithError:
        macs = macs_of(at)
        missed = []
        if lat > max_latency_ratio:
            missed.append(f"max_latency_ratio {max_latency_ratio}")
        if macs > mac_goal:
            missed.append(f"mac_reduction {min_mac_reduction}")
        kept = f"keeps {macs / base_macs:.0%} of its MACs"
        if params_of and min_param_reduction:
            params = params_of(at)
            if params > param_goal:
                missed.append(f"param_reduction {min_param_reduction}")
            kept += f" and {params / base_params:.0%} of its parameters"
        return EdgesmithError(
            f"{' and '.join(missed)} out of reach: with every channel group at its smallest "
            f"width (steps of {round_to if round_to > 1 else 'an eighth of the group'}) the int8 "
            f"model runs at {lat:.2f}x the source and {kept}"
        )

    latency = measure([widths])[0]
    for _ in range(MAX_STEPS):
        if done(latency, widths):
            if not steps:
                break  # the source already meets the targets
            latency = measure([widths])[0]  # the chosen sample was the best of a noisy batch:
            if done(latency, widths):  # stop only if a fresh measurement agrees
                break
        candidates = []
        for group, width in widths.items():
            smaller = next_width(width, sizes[group], round_to)
            if smaller is not None:
                candidates.append((group, {**widths, group: smaller}))
        if not candidates:
            raise unreachable(latency, widths)
        ratios = measure([widths] + [c for _, c in candidates])
        latency = ratios[0]  # re-measured beside the candidates
        # progress on the MAC/parameter gaps once this fresh reading has the latency in hand
        open_ = gaps(widths) if latency <= max_latency_ratio else []
        best, best_score = 0, (-np.inf, -np.inf)
        for i, (_, candidate) in enumerate(candidates):
            value = score(widths, candidate, latency - ratios[i + 1], open_)
            if value > best_score:
                best, best_score = i, value
        group, widths = candidates[best]
        latency = ratios[best + 1]
        record = {
            "group": names[group],
            "width": widths[group],
            "latency_ratio": round(latency, 4),
            "mac_ratio": round(macs_of(widths) / base_macs, 4),
        }
        line = f"latency {latency:.3f}x, MACs {record['mac_ratio']:.1%}"
        if params_of:
            record["param_ratio"] = round(params_of(widths) / base_params, 4)
            line += f", parameters {record['param_ratio']:.1%}"
        steps.append(record)
        report(
            f"width search step {len(steps)}: {record['group']} -> {record['width']} channels; "
            f"{line} of the source"
        )
    else:
        raise EdgesmithError(
            f"the width search stopped after {MAX_STEPS} steps at {latency:.2f}x the source's "
            f"latency without meeting its targets; use a larger --round-to (fewer, bigger steps)"
        )
    param_ratio = params_of(widths) / base_params if params_of else None
    return SearchResult(widths, latency, macs_of(widths) / base_macs, steps, param_ratio)


def _memo(count: Callable[[Widths], int]) -> Callable[[Widths], int]:
    """``count`` cached by widths (each call rebuilds a channel selection)."""
    cache: dict[tuple, int] = {}

    def cached(widths: Widths) -> int:
        key = tuple(sorted(widths.items()))
        if key not in cache:
            cache[key] = count(widths)
        return cache[key]

    return cached


class TfliteTimer(Closeable):
    """Times thin variants of a model as full-int8 .tflite files against the model itself.

    Each width set is rebuilt (:func:`edgesmith.compress.channel_pruning.rebuild`), converted
    once (files are cached by widths in a temporary folder) and timed interleaved with the
    source model by :func:`edgesmith.runtime.benchmark`, batch 1.

    Args:
        model: the source model.
        plan: its channel plan.
        calibration: a few normalised training images (latency does not depend on them, but
            int8 conversion needs ranges).
        threads: runtime threads while timing (1: repeatable figures).
        min_seconds: timing per model per step.
        ranking: which channels survive in the rebuilt variants (does not change latency).
    """

    def __init__(
        self,
        model: keras.Model,
        plan: ChannelPlan,
        calibration: np.ndarray,
        *,
        threads: int = 1,
        min_seconds: float = 0.5,
        ranking: str = "l1",
    ):
        self.model = model
        self.plan = plan
        self.calibration = calibration
        self.threads = threads
        self.min_seconds = min_seconds
        self.ranking = ranking
        self._dir = tempfile.TemporaryDirectory(prefix="edgesmith-widths-")
        self._files: dict[tuple, Path] = {}
        self._count = 0
        try:
            self.source_file = self._write("source", self.model)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Delete the converted files."""
        self._dir.cleanup()

    def _write(self, stem: str, model: keras.Model) -> Path:
        from edgesmith.export import convert_tflite as convert

        path = Path(self._dir.name) / f"{stem}.tflite"
        path.write_bytes(convert(model, "int8", calibration=self.calibration))
        return path

    def file_for(self, widths: Widths) -> Path:
        """The int8 .tflite of the model at these widths (converted on first use)."""
        from edgesmith.compress.channel_pruning import choose, rebuild

        key = tuple(sorted(widths.items()))
        if all(count == self.plan.groups[g].size for g, count in key):
            return self.source_file  # nothing removed: the source's own file
        if key not in self._files:
            choose(self.model, self.plan, 0.0, self.ranking, 1, widths)
            thin = rebuild(self.model, self.plan)
            self._count += 1
            self._files[key] = self._write(f"w{self._count}", thin)
            del thin
            gc.collect()  # a rebuilt model per candidate: do not let them pile up
        return self._files[key]

    def __call__(self, width_sets: Sequence[Widths]) -> list[float]:
        """Latency of each width set over the source's: p50s from one interleaved run."""
        from edgesmith.runtime import BenchConfig, TimingPlan, benchmark

        wanted = {tuple(sorted(w.items())) for w in width_sets}
        for key in [k for k in self._files if k not in wanted]:  # earlier steps' candidates
            self._files.pop(key).unlink(missing_ok=True)
        paths = [self.source_file] + [self.file_for(w) for w in width_sets]
        timing = TimingPlan(
            min_runs=100, min_seconds=self.min_seconds, warmup_runs=10, warmup_seconds=0.1
        )
        run = benchmark(paths, config=BenchConfig(threads=self.threads, batch=1, timing=timing))
        p50 = [result.latency.p50 for result in run.results]
        return [ms / p50[0] for ms in p50[1:]]
