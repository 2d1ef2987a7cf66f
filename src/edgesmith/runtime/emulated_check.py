"""``check --emulate TARGET``: the regression gate's accuracy half, on the target's kernels.

The native gate runs here, so its accuracy is this CPU's kernels'. A device's kernels round
their own way (an int8 file on an ARM core, or on an x86 core without VNNI), so a change can
keep accuracy here and lose it there. With ``--emulate`` the candidate and the baseline's own
model file (found by sha256, as the native gate finds it) run in one child Python under
qemu-user, on the baseline's data, and the candidate's accuracy there is held to the
reference's accuracy there: like with like, on the same kernels and images.

Latency is not gated: an emulator's wall-clock on a shared host says nothing about the device's
time, in absolute terms or as a ratio (qemu translates each kind of instruction at its own
cost). Both p50s are shown in a note, labelled, and the latency status is ``not asked`` with the
reason "emulated, not judged". Without the reference file, the baseline's stored accuracy stands
in only when that baseline was itself benched on the same emulated target; otherwise the
comparison is skipped (and fails closed, as every skipped comparison does, unless
``--allow-skip``). ``--measure instructions`` and ``--no-accuracy`` do not combine with it
(refused by :class:`~edgesmith.runtime.regression.CheckOptions`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from edgesmith.core.progress import Reporter
from edgesmith.runtime.bench import BenchConfig
from edgesmith.runtime.bench_schema import BenchDocument, BenchResult
from edgesmith.runtime.emulation import EMULATED_TIMING
from edgesmith.runtime.regression import (
    CHECK_TIMING,
    DEFAULT_MAX_SLOWDOWN,
    CheckOptions,
    Status,
    Verdict,
    accuracy_status,
    find_reference,
    match_entry,
    settings_of,
)

NOT_JUDGED = "emulated, not judged: the emulator's wall-clock on this host is not the device's time"


@dataclasses.dataclass
class _Plan:
    """One candidate's comparison: its baseline entry, settings, and the reference file."""

    candidate: str
    entry: BenchResult
    config: BenchConfig
    reference: Path | None
    notes: list[str]
    candidate_result: BenchResult | None = None
    reference_result: BenchResult | None = None


def check_emulated(
    candidates: Sequence[str],
    baseline: BenchDocument,
    options: CheckOptions,
    *,
    base_dir: Path | None = None,
    report: Reporter | None = None,
) -> list[Verdict]:
    """Gate each candidate's accuracy on ``options.emulate`` against the baseline's file there.

    Candidates sharing the baseline's settings (threads, batch, provider) run in one emulated
    child with their references, so the slow start-up is paid once per setting.

    Raises:
        EdgesmithError: for a target that cannot be emulated here, a bad data spec, a
            baseline provider that loads native code, or the child's own error.
    """
    from edgesmith.runtime.emulation import emulated_benchmark

    target = options.emulate
    assert target is not None
    timing = EMULATED_TIMING if options.timing == CHECK_TIMING else options.timing
    data = options.data or baseline.data
    if data:
        from edgesmith.core.datasets import parse_spec

        parse_spec(data)  # a typo fails now, not after the emulator started
    plans = []
    for candidate in candidates:
        entry = match_entry(candidate, baseline)
        config = settings_of(baseline, entry, options.provider)
        reference, notes = find_reference(entry, baseline.store, base_dir)
        config = config.replace(timing=timing, emulate=target)
        plans.append(_Plan(candidate, entry, config, reference, notes))
    groups: dict[str, list[_Plan]] = {}
    for plan in plans:
        groups.setdefault(json.dumps(plan.config.to_dict(), sort_keys=True), []).append(plan)
    emulation = None
    for group in groups.values():
        paths: list[str] = []
        for plan in group:
            for path in (plan.candidate, plan.reference):
                if path is not None and str(path) not in paths:
                    paths.append(str(path))
        document = emulated_benchmark(
            paths, target=target, data=data, config=group[0].config, report=report
        )
        emulation = document.emulation
        by_path = dict(zip(paths, document.results, strict=True))
        for plan in group:
            plan.candidate_result = by_path[plan.candidate]
            if plan.reference is not None:
                plan.reference_result = by_path[str(plan.reference)]
    return [_verdict(plan, baseline, options, data, emulation) for plan in plans]


def _verdict(
    plan: _Plan, baseline: BenchDocument, options: CheckOptions, data: str | None, emulation
) -> Verdict:
    """The verdict of one candidate from its and its reference's emulated results."""
    target = options.emulate
    notes = list(plan.notes)
    cand, ref = plan.candidate_result, plan.reference_result
    assert cand is not None
    if baseline.emulation is not None:
        recorded = f"emulated {baseline.emulation.target}"
    else:
        recorded = f"{baseline.machine.cpu if baseline.machine else 'a real CPU'} (not emulated)"
    if plan.reference is not None:
        notes.append(
            f"reference: {plan.reference} (the baseline's file: its sha256 matches), run on "
            f"emulated {target} beside the candidate"
        )
        if cand.sha256 == plan.entry.sha256:
            notes.append("the candidate is the baseline's model file itself (same sha256)")
    if options.data is not None and baseline.data and options.data != baseline.data:
        notes.append(f"accuracy measured on {options.data}; the baseline's was on {baseline.data}")
    accuracy = None if cand.accuracy is None else 100.0 * cand.accuracy
    compared_with: float | None = None
    if not data:
        status, reason = Status.SKIPPED, "the baseline names no data to measure accuracy on: "
        reason += "pass --data"
    elif ref is not None:
        compared_with = None if ref.accuracy is None else 100.0 * ref.accuracy
        if plan.entry.accuracy is not None:
            notes.append(
                f"the baseline recorded {100.0 * plan.entry.accuracy:.2f}% for it, on {recorded}"
            )
        status, reason = accuracy_status(accuracy, compared_with, options.max_accuracy_drop)
    elif (
        baseline.emulation is not None
        and baseline.emulation.target == target
        and (options.data is None or options.data == baseline.data)
    ):
        compared_with = None if plan.entry.accuracy is None else 100.0 * plan.entry.accuracy
        notes.append(f"compared with the baseline's stored accuracy, measured on emulated {target}")
        status, reason = accuracy_status(accuracy, compared_with, options.max_accuracy_drop)
    else:
        status = Status.SKIPPED
        reason = (
            f"no reference file, and the baseline's accuracy is from {recorded}, not emulated "
            f"{target}: keep the store folder bench --json-out writes beside the baseline"
        )
    p50 = f"candidate {cand.latency.p50:.3f} ms"
    if ref is not None:
        p50 += f", reference {ref.latency.p50:.3f} ms"
    notes.append(f"emulated latency p50, the emulator's wall-clock (not judged): {p50}")
    if options.max_slowdown != DEFAULT_MAX_SLOWDOWN:
        notes.append(f"--max-slowdown {options.max_slowdown:g} is not applied with --emulate")
    return Verdict.against(
        plan.candidate,
        plan.entry,
        options,
        mode="emulated",
        latency=None,
        latency_status=Status.NOT_ASKED,
        accuracy_percent=accuracy,
        baseline_accuracy_percent=compared_with,
        accuracy_status=status,
        notes=notes,
        latency_reason=NOT_JUDGED,
        accuracy_reason=reason,
        emulation=emulation,
    )
