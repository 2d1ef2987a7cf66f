"""``edgesmith check``: the latency and accuracy regression gate, and its pytest helper.

The gate fails closed: it passes only what it has compared and found within bounds.

Latency is compared **paired**: the baseline's own model file (found by its sha256 in the store
that ``bench --json-out`` writes beside the JSON, or at its recorded path if the content still
matches) and the candidate are re-measured here, interleaved in the same process, and the verdict
rests on a bootstrap confidence interval of the median latency ratio over paired rounds. A
regression is declared when the ratio exceeds ``max_slowdown`` **and** the interval lies above
1.0. A reference whose sha256 differs from the recorded one is never used: replacing the model
file in place (the README's device-CI flow) therefore compares the new file with the old one.

When the gate cannot compare, the check is not passed: no reference file (the candidate can
still be caught against the stored median on the same kind of machine, but a pass there is
``unverified``: its interval covers neither the baseline session's noise nor the drift between
the sessions), a baseline from another kind of machine, no accuracy in the baseline, or a ratio
above the limit whose interval still reaches 1.0 (``noisy``). Each such status exits 1 unless
``allow_skip``. Accuracy tolerances are percentage points (``1.0`` allows one point).

A baseline is untrusted input: it is validated by ``bench_schema`` (exit 2 for a malformed
document), and a provider it records that would load native code (``delegate:/x.so``) is
refused unless the caller passes that same provider.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgesmith.core.artifacts import sha256_file
from edgesmith.core.config import Config, setting
from edgesmith.core.emulated import EMULATED_TARGETS
from edgesmith.core.errors import CheckFailed, EdgesmithError
from edgesmith.core.progress import Reporter
from edgesmith.runtime.bench import MEASURES, BenchConfig, open_model
from edgesmith.runtime.bench_schema import (
    BenchDocument,
    BenchResult,
    Emulation,
    Instructions,
    parse_document,
    read_document,
)
from edgesmith.runtime.machine import machine_info, same_machine
from edgesmith.runtime.stats import RatioEstimate, paired_ratio, ratio_to_stored
from edgesmith.runtime.timing import Step, TimingPlan, measure

CHECK_TIMING = TimingPlan(min_runs=500, min_seconds=5.0, warmup_runs=10, warmup_seconds=0.5)
# Providers whose value names native code to load into this process.
NATIVE_PROVIDER_PREFIXES = ("delegate:",)


class Status(str, enum.Enum):
    """The outcome of one comparison; why, when it was not decided, is a separate reason."""

    OK = "ok"
    REGRESSION = "regression"
    NOT_ASKED = "not asked"
    NOISY = "noisy"
    UNVERIFIED = "unverified"
    SKIPPED = "skipped"

    @property
    def decided(self) -> bool:
        """A decision was made (ok, regression, or the user did not ask for it)."""
        return self in (Status.OK, Status.REGRESSION, Status.NOT_ASKED)

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True)
class CheckOptions(Config):
    """How the gate compares: the limits, how long to time, and what to do when it cannot.

    Attributes:
        max_slowdown: allowed latency ratio (1.10 allows 10% slower).
        max_accuracy_drop: allowed accuracy drop in percentage points (1.0 allows one point).
        timing: how long candidate and reference are timed (interleaved).
        any_machine: without the reference file, compare with the stored median of a baseline
            from another kind of machine anyway (it can catch a regression, never pass one).
        allow_skip: pass comparisons that cannot be made instead of failing them.
        skip_accuracy: gate latency only.
        data: data spec for the accuracy check, in place of the baseline's.
        provider: re-measure with this provider instead of the baseline's (required to use a
            baseline's native-code provider: a baseline file never loads native code by itself).
        measure: the cost gated: ``latency`` (wall-clock, paired) or ``instructions``
            (instructions per inference, counted under valgrind at one thread).
        max_increase: allowed instruction ratio with ``measure="instructions"``.
        emulate: run candidate and reference on this emulated CPU (``aarch64``,
            ``x86-64-avx2``) and gate accuracy only, on the target's kernels; the emulated
            latency is shown, labelled, and never judged (``runtime/emulated_check.py``).
    """

    max_slowdown: float = setting(
        1.10, "allowed latency ratio (1.10 = 10%% slower)", metavar="R", low=1.0
    )
    max_accuracy_drop: float = setting(
        1.0,
        "allowed accuracy drop in percentage points, 0..100 (1.0 = one point)",
        metavar="POINTS",
        low=0.0,
        high=100.0,
    )
    timing: TimingPlan = setting(lambda: CHECK_TIMING, "", flag="", factory=True)
    any_machine: bool = setting(
        False,
        "without the reference file, compare with the stored median of a baseline from another "
        "kind of machine anyway (it can catch a regression, not pass one)",
    )
    allow_skip: bool = setting(
        False,
        "pass comparisons that cannot be made (no reference file, another machine, no accuracy "
        "in the baseline, too noisy) instead of exiting 1",
    )
    skip_accuracy: bool = setting(
        False, "gate latency only (no dataset needed)", flag="--no-accuracy"
    )
    data: str | None = setting(
        None, "data for the accuracy check (default: the baseline's)", metavar="SPEC"
    )
    provider: str | None = setting(
        None,
        "re-measure with this provider instead of the baseline's (required to use a baseline's "
        "delegate:/x.so: a baseline file never loads native code by itself)",
        metavar="P",
    )
    measure: str = setting(
        "latency",
        "the cost gated: latency = wall-clock, paired rounds; instructions = instructions per "
        "inference under valgrind, one thread (deterministic: catches a 2%% change, but not a "
        "slower kernel that runs no more instructions)",
        choices=MEASURES,
    )
    max_increase: float = setting(
        1.02,
        "allowed instructions-per-inference ratio with --measure instructions (1.02 = 2%% more)",
        metavar="R",
        low=1.0,
    )
    emulate: str | None = setting(
        None,
        "run candidate and reference on an emulated CPU (qemu-user): aarch64 = Cortex-A72 "
        "(edgesmith device setup aarch64), x86-64-avx2 = AVX2 without VNNI; gates accuracy on "
        "the target's kernels, shows the emulator's latency labelled and never judges it",
        metavar="TARGET",
        choices=EMULATED_TARGETS,
    )

    def __post_init__(self) -> None:
        if isinstance(self.timing, dict):
            object.__setattr__(self, "timing", TimingPlan.from_dict(self.timing))
        super().__post_init__()
        if self.emulate is not None and self.measure == "instructions":
            raise EdgesmithError(
                "--measure instructions counts on this machine with valgrind; drop --emulate, or "
                "--measure latency for an emulated check"
            )
        if self.emulate is not None and self.skip_accuracy:
            raise EdgesmithError(
                "--emulate gates accuracy only (an emulated latency is not judged), so with "
                "--no-accuracy there is nothing to check: drop one"
            )


DEFAULT_MAX_SLOWDOWN = CheckOptions().max_slowdown
DEFAULT_MAX_ACCURACY_DROP = CheckOptions().max_accuracy_drop  # percentage points


def latency_status(estimate: RatioEstimate, max_slowdown: float) -> Status:
    """``REGRESSION``, ``OK`` or ``NOISY`` for a paired latency ratio estimate.

    ``REGRESSION``: the ratio is above ``max_slowdown`` and its interval lies wholly above 1.0.
    ``NOISY``: the ratio is above ``max_slowdown`` but the interval reaches 1.0 (cannot call
    it either way: not a pass). ``OK`` otherwise.
    """
    if estimate.ratio <= max_slowdown:
        return Status.OK
    return Status.REGRESSION if estimate.low > 1.0 else Status.NOISY


def accuracy_status(
    candidate_percent: float | None, baseline_percent: float | None, max_drop_points: float
) -> tuple[Status, str]:
    """``REGRESSION`` when accuracy fell by more than ``max_drop_points``, ``OK``, or skipped.

    Both accuracies are percentages (0..100), the drop is in percentage points.

    Returns:
        The status and, for a skipped comparison, why.
    """
    if baseline_percent is None:
        return Status.SKIPPED, "the baseline has no accuracy: record it with bench --data"
    if candidate_percent is None:
        return Status.SKIPPED, "not measured"
    if baseline_percent - candidate_percent > max_drop_points + 1e-9:
        return Status.REGRESSION, ""
    return Status.OK, ""


def _said(status: Status, reason: str) -> str:
    return f"{status.value} ({reason})" if reason else status.value


@dataclasses.dataclass(frozen=True)
class InstructionsCompared:
    """Candidate and reference instructions per inference, counted the same way, and the limit."""

    candidate: Instructions
    reference: Instructions
    max_increase: float

    @property
    def ratio(self) -> float:
        """Candidate over reference (1.02 = 2% more instructions)."""
        return self.candidate.per_inference / self.reference.per_inference

    @property
    def status(self) -> Status:
        """``REGRESSION`` above the limit, else ``OK``: a count has no noise to be unsure of."""
        return Status.REGRESSION if self.ratio > self.max_increase else Status.OK

    def text(self) -> str:
        """One line for a person."""
        return (
            f"instructions per inference {self.candidate.per_inference:,.0f} vs "
            f"{self.reference.per_inference:,.0f} (ratio {self.ratio:.4f}), allowed <= "
            f"{self.max_increase:.4g}"
        )


@dataclasses.dataclass
class Verdict:
    """The gate's decision for one candidate, with the numbers and reasons behind it.

    Accuracies are percentages (0..100) and ``max_accuracy_drop_points`` is in percentage
    points, as every accuracy tolerance in edgesmith. ``latency_status`` is the status of the
    cost that was gated: wall-clock, or with ``mode == "counted"`` the ``instructions``.
    """

    candidate: str
    reference: str
    # "paired" (both re-measured here), "stored" (baseline's numbers), "counted" (instructions
    # counted under callgrind, the reference here or its stored count) or "none"
    mode: str
    latency: RatioEstimate | None
    latency_status: Status
    accuracy_percent: float | None
    baseline_accuracy_percent: float | None
    accuracy_status: Status
    max_slowdown: float
    max_accuracy_drop_points: float
    allow_skip: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)
    latency_reason: str = ""
    accuracy_reason: str = ""
    instructions: InstructionsCompared | None = None
    emulation: Emulation | None = None

    @classmethod
    def against(cls, candidate: str, entry: Any, options: CheckOptions, **fields: Any) -> Verdict:
        """A verdict on ``candidate`` against the baseline's ``entry``, with ``options``' limits."""
        return cls(
            candidate=candidate,
            reference=f"{entry.path} [sha256 {entry.sha256[:12]}]",
            max_slowdown=options.max_slowdown,
            max_accuracy_drop_points=options.max_accuracy_drop,
            allow_skip=options.allow_skip,
            **fields,
        )

    @property
    def regressed(self) -> bool:
        """True when latency or accuracy was compared and found worse than allowed."""
        return Status.REGRESSION in (self.latency_status, self.accuracy_status)

    @property
    def compared(self) -> bool:
        """True when every requested comparison was made (nothing skipped, noisy, unverified)."""
        return self.latency_status.decided and self.accuracy_status.decided

    @property
    def ok(self) -> bool:
        """Pass: nothing regressed, and everything was compared (or ``allow_skip`` was given)."""
        return not self.regressed and (self.compared or self.allow_skip)

    def text(self) -> str:
        """The verdict as lines for a person (and for an AssertionError)."""
        head = "PASS" if self.ok else "FAIL"
        how = {
            "paired": f"re-measured side by side, {self.latency.rounds if self.latency else 0} "
            "paired rounds",
            "stored": "against the baseline's stored numbers",
            "counted": "instructions per inference, counted under callgrind",
            "emulated": "run on emulated "
            + (self.emulation.target if self.emulation else "?")
            + "; accuracy gated, latency not judged",
        }.get(self.mode, "latency not compared")
        lines = [f"{head}  {self.candidate} vs {self.reference} ({how})"]
        if self.instructions is not None:
            lines.append(f"  {self.instructions.text()}: {self.latency_status}")
        elif self.mode == "counted":
            lines.append(f"  instructions: {_said(self.latency_status, self.latency_reason)}")
        elif self.latency is not None:
            e = self.latency
            lines.append(
                f"  latency p50 ratio {e.ratio:.3f} ({e.confidence:.0%} CI {e.low:.3f}-"
                f"{e.high:.3f}), allowed <= {self.max_slowdown:.2f}: "
                f"{_said(self.latency_status, self.latency_reason)}"
            )
        else:
            lines.append(f"  latency: {_said(self.latency_status, self.latency_reason)}")
        if self.accuracy_percent is None or self.baseline_accuracy_percent is None:
            lines.append(f"  accuracy: {_said(self.accuracy_status, self.accuracy_reason)}")
        else:
            drop = self.baseline_accuracy_percent - self.accuracy_percent
            lines.append(
                f"  accuracy {self.accuracy_percent:.2f}% vs {self.baseline_accuracy_percent:.2f}% "
                f"(drop {drop:.2f} points, allowed {self.max_accuracy_drop_points:.2f}): "
                f"{self.accuracy_status}"
            )
        if not self.regressed and not self.compared:
            lines.append(
                "  not compared: "
                + (
                    "passed because --allow-skip was given"
                    if self.allow_skip
                    else "this fails the check (pass --allow-skip to accept a skipped comparison)"
                )
            )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """A JSON-ready record (statuses as their values, reasons beside them)."""
        record = dataclasses.asdict(self)
        record.update(
            latency_status=self.latency_status.value,
            accuracy_status=self.accuracy_status.value,
            ok=self.ok,
            regressed=self.regressed,
            compared=self.compared,
        )
        return record


def read_baseline(source: str | Path | dict) -> BenchDocument:
    """Load and validate a bench JSON document (as written by ``edgesmith bench --json-out``).

    Raises:
        EdgesmithError: for a missing file, invalid JSON, or an invalid document.
    """
    if isinstance(source, dict):
        return parse_document(source, "baseline")
    return read_document(source)


def match_entry(candidate: str, baseline: BenchDocument) -> BenchResult:
    """The baseline result a candidate is compared with.

    The same path, else the same file or directory name, else the only result there is.

    Raises:
        EdgesmithError: when several results could match and none does by name.
    """
    results = baseline.results
    for record in results:
        if record.path == candidate:
            return record
    name = Path(candidate).name
    for record in results:
        if Path(record.path).name == name:
            return record
    if len(results) == 1:
        return results[0]
    names = ", ".join(Path(r.path).name for r in results)
    raise EdgesmithError(
        f"cannot tell which baseline result {candidate} is to be compared with: the baseline "
        f"has {names}; name the candidate like one of them"
    )


def find_reference(
    entry: BenchResult, store: str | None, base_dir: Path | None
) -> tuple[Path | None, list[str]]:
    """The baseline's model file, found by its sha256, and notes on the places that failed.

    Looked for in the baseline's store (``<store>/<sha256>.<format>`` beside the JSON), then
    at the recorded path (as given, then relative to the JSON's directory). A file is used only
    when its sha256 is the recorded one: a file replaced in place is never the reference.
    """
    places: list[Path] = []
    if store is not None and base_dir is not None:
        places.append(base_dir / store / f"{entry.sha256}.{entry.format}")
    recorded = Path(entry.model_file)
    places.append(recorded)
    if base_dir is not None and not recorded.is_absolute():
        places.append(base_dir / recorded)
    notes = []
    seen: set[Path] = set()
    for place in places:
        if not place.is_file() or place.resolve() in seen:
            continue
        seen.add(place.resolve())
        if sha256_file(place) == entry.sha256:
            return place, notes
        notes.append(
            f"{place} is not the baseline's model (its sha256 differs from the recorded "
            f"{entry.sha256[:12]}...): not used as the reference"
        )
    return None, notes


def settings_of(
    baseline: BenchDocument, entry: BenchResult, provider: str | None = None
) -> BenchConfig:
    """Re-measure with the baseline's threads, batch and provider (a fair comparison).

    ``provider`` (the caller's ``--provider``) replaces the baseline's. A baseline provider that
    loads native code is never taken from the file: without a ``provider`` from the caller the
    baseline is refused, so a JSON file can never make ``check`` load a shared library.

    Raises:
        EdgesmithError: for a native-code provider in the baseline the caller did not pass.
    """
    recorded = baseline.settings.provider
    if (
        recorded is not None
        and recorded.strip().lower().startswith(NATIVE_PROVIDER_PREFIXES)
        and provider is None
    ):
        raise EdgesmithError(
            f"the baseline records provider {recorded!r}, which loads native code: check never "
            f"takes it from a file; pass --provider {recorded} to use it, or another --provider"
        )
    return BenchConfig(
        threads=entry.threads,
        batch=entry.batch,
        provider=provider if provider is not None else recorded,
        xnnpack=baseline.settings.xnnpack,
        foreign_normalization=baseline.settings.foreign_normalization,
    )


def compare_latency(
    candidate_step: Step,
    reference_step: Step | None = None,
    *,
    stored_p50_ms: float | None = None,
    plan: TimingPlan = CHECK_TIMING,
    max_slowdown: float = DEFAULT_MAX_SLOWDOWN,
    report: Reporter | None = None,
) -> tuple[RatioEstimate, Status]:
    """Time a candidate against a reference (paired rounds) or against a stored median.

    The steps are what is timed (see ``Runner.step``); taking them rather than models lets a
    caller wrap one, as the gate's own benchmark does to inject a known slowdown.

    Returns:
        The ratio estimate and its status (see :func:`latency_status`).

    Raises:
        ValueError: with neither a reference step nor a stored median.
    """
    if reference_step is not None:
        cand_rounds, ref_rounds = measure([candidate_step, reference_step], plan, report)
        estimate = paired_ratio(cand_rounds, ref_rounds)
    elif stored_p50_ms is not None:
        (cand_rounds,) = measure([candidate_step], plan, report)
        estimate = ratio_to_stored(cand_rounds, stored_p50_ms)
    else:
        raise ValueError("compare_latency needs a reference step or a stored median")
    return estimate, latency_status(estimate, max_slowdown)


def compare_instructions(
    candidate: str,
    ref_file: Path | None,
    entry: BenchResult,
    config: BenchConfig,
    data: str | None,
    options: CheckOptions,
    differs: list[str],
    notes: list[str],
    report: Reporter,
) -> tuple[InstructionsCompared | None, Status, str]:
    """Count the candidate's instructions per inference against the reference's.

    Both files are counted here at one thread, fed the first images of ``data`` (the
    baseline's, as ``bench --measure instructions`` counted them; a count moves slightly with
    the input). Without the reference
    file, the baseline's own count stands in when it was taken on the same kind of machine (a
    count does not drift between sessions as wall-clock does, so that comparison decides);
    otherwise the comparison is skipped. ``notes`` gains what a reader needs to know.
    """
    from edgesmith.runtime.instructions import count_instructions

    notes.append(
        "instructions compare like with like: a change that runs no more instructions but "
        "slower ones (a float file for an int8 one, a memory-bound kernel) is wall-clock's "
        "to catch (--measure latency)"
    )
    config = config.replace(threads=1)
    if entry.threads != 1:
        notes.append(f"counted at one thread (the baseline was timed at {entry.threads})")
    if ref_file is not None:
        counts = count_instructions([candidate, str(ref_file)], config, data=data, report=report)
        compared = InstructionsCompared(counts[0], counts[1], options.max_increase)
        return compared, compared.status, ""
    if entry.instructions is None:
        return None, Status.SKIPPED, "no reference file, and the baseline holds no count"
    if differs:
        return None, Status.SKIPPED, (
            "no reference file, and the baseline's count is from another machine ("
            + ", ".join(differs) + " differ)"
        )  # fmt: skip
    (count,) = count_instructions([candidate], config, data=data, report=report)
    if count.runs != entry.instructions.runs:
        notes.append(f"counted over {count.runs} runs; the baseline's count over "
                     f"{entry.instructions.runs}")  # fmt: skip
    notes.append("compared with the baseline's stored count (same kind of machine)")
    compared = InstructionsCompared(count, entry.instructions, options.max_increase)
    return compared, compared.status, ""


def check_one(
    candidate: str,
    baseline: BenchDocument,
    options: CheckOptions,
    *,
    base_dir: Path | None = None,
    report: Reporter | None = None,
) -> Verdict:
    """Gate one candidate model against its baseline entry (see the module docstring).

    ``base_dir`` is the baseline JSON's directory, where its store and a relative reference path
    are looked up. Accuracy is measured on the baseline's data spec, or ``options.data``; not
    at all with ``options.skip_accuracy`` (status ``NOT_ASKED``).
    """
    from edgesmith.runtime.accuracy import evaluate

    report = report or (lambda line: None)
    entry = match_entry(candidate, baseline)
    config = settings_of(baseline, entry, options.provider)
    plan, data_override, skip_accuracy = options.timing, options.data, options.skip_accuracy
    notes: list[str] = []
    data = None if skip_accuracy else baseline.data
    if not skip_accuracy and data_override is not None:
        if data and data_override != data:
            notes.append(f"accuracy measured on {data_override}; the baseline's was on {data}")
        data = data_override
    dataset = None
    if data and entry.accuracy is not None:
        from edgesmith.core.datasets import load_dataset

        dataset = load_dataset(data)
        if entry.num_eval and len(dataset.y_eval) != entry.num_eval:
            notes.append(
                f"{data} has {len(dataset.y_eval)} eval images; the baseline's accuracy was on "
                f"{entry.num_eval}"
            )
    pixels = dataset.x_eval if dataset is not None else None
    cand = open_model(candidate, config, pixels, data)
    notes += cand.notes
    ref_file, ref_notes = find_reference(entry, baseline.store, base_dir)
    notes += ref_notes
    differs = same_machine(baseline.machine, machine_info())
    ref = None
    estimate: RatioEstimate | None = None
    counted: InstructionsCompared | None = None
    reason = ""
    if options.measure == "instructions":
        mode = "counted"
        counted, status, reason = compare_instructions(
            candidate, ref_file, entry, config, baseline.data, options, differs, notes, report
        )
    elif ref_file is not None:
        mode = "paired"
        ref = open_model(str(ref_file), config, pixels, data)
        notes.append(f"reference: {ref_file} (the baseline's file: its sha256 matches)")
        if sha256_file(cand.model.path) == entry.sha256:
            notes.append("the candidate is the baseline's model file itself (same sha256)")
        if differs:
            notes.append(
                "the baseline was recorded on another machine (" + ", ".join(differs) + " differ);"
                " both files were re-measured here, so the ratio stands"
            )
    elif differs and not options.any_machine:
        mode = "none"
        status = Status.SKIPPED
        reason = "no reference file, and the baseline is from another machine"
        notes.append(
            "the baseline's model file is not at hand and the baseline was recorded on another "
            "machine (" + ", ".join(differs) + " differ): its stored latency says nothing about "
            "this one; keep the store folder bench --json-out writes beside the baseline"
        )
    else:
        mode = "stored"
        notes.append(
            "the baseline's model file is not at hand (keep the store folder bench --json-out "
            "writes beside the baseline): compared with the stored median, which can catch a "
            "regression but not confirm its absence"
        )
    if mode in ("paired", "stored"):
        report(f"timing {candidate} against {ref_file if ref else 'the stored p50'}")
        estimate, status = compare_latency(
            cand.step,
            ref.step if ref else None,
            stored_p50_ms=entry.latency.p50,
            plan=plan,
            max_slowdown=options.max_slowdown,
            report=report,
        )
        if mode == "stored" and status != Status.REGRESSION:
            status, reason = Status.UNVERIFIED, "stored numbers only"
        if status == Status.NOISY:
            notes.append("too noisy to call either way: rerun with a larger --min-seconds")
        if plan.min_seconds < 1.0:
            notes.append(
                f"timed only {plan.min_seconds:g} s per model: on a shared machine a burst of "
                "other work can shift so short a measurement by 10% or more; give --min-seconds "
                "5 (the default) or more for a verdict to rely on"
            )
    accuracy = None
    if dataset is not None:
        report(f"accuracy of {candidate} on {data}")
        accuracy = 100.0 * evaluate(cand.model, dataset.x_eval, dataset.y_eval)["accuracy"]
    for opened in (cand, ref):
        if opened is not None:
            opened.model.close()
    baseline_accuracy = None if entry.accuracy is None else 100.0 * entry.accuracy
    if skip_accuracy:
        acc_status, acc_reason = Status.NOT_ASKED, ""
    elif baseline_accuracy is not None and not data:
        acc_status = Status.SKIPPED
        acc_reason = "the baseline names no data to measure accuracy on: pass --data"
    else:
        acc_status, acc_reason = accuracy_status(
            accuracy, baseline_accuracy, options.max_accuracy_drop
        )
    return Verdict.against(
        candidate,
        entry,
        options,
        mode=mode,
        latency=estimate,
        latency_status=status,
        accuracy_percent=accuracy,
        baseline_accuracy_percent=baseline_accuracy,
        accuracy_status=acc_status,
        notes=notes,
        latency_reason=reason,
        accuracy_reason=acc_reason,
        instructions=counted,
    )


def check(
    candidates: Sequence[str | Path],
    baseline: str | Path | dict,
    options: CheckOptions | None = None,
    *,
    report: Reporter | None = None,
    **settings: Any,
) -> list[Verdict]:
    """Gate each candidate against the baseline; returns the verdicts (never raises on FAIL).

    Args:
        candidates: model files or artifact directories.
        baseline: a bench document (``bench --json-out``): its path, or the parsed mapping.
        options: the limits and timing (:class:`CheckOptions`).
        report: progress lines.
        **settings: :class:`CheckOptions` fields over ``options`` (``max_slowdown=1.05`` ...).

    Raises:
        EdgesmithError: for a bad baseline, limits, paths, data or provider.
    """
    options = (options or CheckOptions()).replace(**settings)
    if not candidates:
        raise EdgesmithError("check needs at least one candidate model path")
    if options.emulate is not None:  # no qemu or aarch64 env: say so before reading anything
        from edgesmith.runtime.emulation import emulator

        emulator(options.emulate)
    document = read_baseline(baseline)
    base_dir = None if isinstance(baseline, dict) else Path(baseline).parent
    if options.emulate is not None:
        from edgesmith.runtime.emulated_check import check_emulated

        return check_emulated(
            [str(c) for c in candidates], document, options, base_dir=base_dir, report=report
        )
    return [
        check_one(str(c), document, options, base_dir=base_dir, report=report) for c in candidates
    ]


def raise_on_failure(verdicts: list[Verdict]) -> None:
    """Raise :class:`CheckFailed` (exit 1) when any verdict failed.

    Raises:
        CheckFailed: naming how many regressed and how many could not be compared.
    """
    regressed = [v.candidate for v in verdicts if v.regressed]
    uncompared = [v.candidate for v in verdicts if not v.ok and not v.regressed]
    parts = []
    if regressed:
        parts.append(
            f"{len(regressed)} of {len(verdicts)} model(s) regressed: {', '.join(regressed)}"
        )
    if uncompared:
        parts.append(
            f"{len(uncompared)} of {len(verdicts)} model(s) could not be compared: "
            f"{', '.join(uncompared)} (--allow-skip passes those)"
        )
    if parts:
        raise CheckFailed("; ".join(parts))


def assert_no_regression(
    candidate: str | Path | Sequence[str | Path],
    baseline: str | Path | dict,
    *,
    min_runs: int | None = None,
    min_seconds: float | None = None,
    **settings: Any,
) -> list[Verdict]:
    """A pytest-friendly gate: raise ``AssertionError`` with the verdict text unless all pass.

    Takes :class:`CheckOptions` fields as keywords (``max_accuracy_drop`` is in percentage
    points), plus the timing's ``min_runs`` and ``min_seconds``. Like ``edgesmith check``, a
    comparison that could not be made fails unless ``allow_skip``.

    Example::

        def test_model_is_not_slower():
            assert_no_regression("build/model.tflite", "baselines/bench.json", max_slowdown=1.1)

    Returns:
        The verdicts (all passing).

    Raises:
        AssertionError: when a candidate regressed or was not compared, with every verdict.
        EdgesmithError: for bad input (a missing file, an invalid baseline).
    """
    candidates = [candidate] if isinstance(candidate, (str, Path)) else list(candidate)
    timing = {"min_runs": min_runs, "min_seconds": min_seconds}
    plan = CHECK_TIMING.replace(**{k: v for k, v in timing.items() if v is not None})
    verdicts = check(candidates, baseline, CheckOptions(timing=plan).replace(**settings))
    if not all(v.ok for v in verdicts):
        raise AssertionError("\n".join(v.text() for v in verdicts))
    return verdicts
