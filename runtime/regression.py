"""``edgesmith check``: the latency and accuracy regression gate, and its pytest helper.

One noisy number is not a verdict. When the baseline's model file is at hand, the candidate and
the reference are re-measured here, interleaved in the same process, and the verdict rests on a
bootstrap confidence interval of the median latency ratio over paired rounds. A latency
regression is declared when the estimated ratio exceeds ``max_slowdown`` **and** the interval
excludes 1.0 (the slowdown is real, not noise). Without the reference file the candidate is
compared with the stored median, and a baseline from another kind of machine is flagged and its
latency not compared (numbers from two machines say nothing about the model).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from edgesmith.artifacts import sha256_file
from edgesmith.errors import CheckFailed, EdgesmithError
from edgesmith.progress import Reporter
from edgesmith.runtime.bench import SCHEMA, SCHEMA_VERSION, BenchConfig, open_model
from edgesmith.runtime.machine import machine_info, same_machine
from edgesmith.runtime.stats import RatioEstimate, paired_ratio, ratio_to_stored
from edgesmith.runtime.timing import Step, TimingPlan, measure

DEFAULT_MAX_SLOWDOWN = 1.10
DEFAULT_MAX_ACCURACY_DROP = 0.01
CHECK_TIMING = TimingPlan(min_runs=500, min_seconds=5.0, warmup_runs=10, warmup_seconds=0.5)


def latency_status(estimate: RatioEstimate, max_slowdown: float) -> str:
    """``regression``, ``ok`` or ``noisy`` for a latency ratio estimate.

    ``regression``: the ratio is above ``max_slowdown`` and its interval lies wholly above 1.0.
    ``noisy``: the ratio is above ``max_slowdown`` but the interval reaches 1.0 (too noisy to
    call; passes, with advice to measure longer). ``ok`` otherwise.
    """
    if estimate.ratio <= max_slowdown:
        return "ok"
    return "regression" if estimate.low > 1.0 else "noisy"


def accuracy_status(candidate: float | None, baseline: float | None, max_drop: float) -> str:
    """``regression`` when accuracy fell by more than ``max_drop``; ``ok``; ``skipped``."""
    if candidate is None or baseline is None:
        return "skipped"
    return "regression" if baseline - candidate > max_drop + 1e-12 else "ok"


@dataclasses.dataclass
class Verdict:
    """The gate's decision for one candidate, with the numbers and reasons behind it."""

    candidate: str
    reference: str
    mode: str  # "paired" (both re-measured here) or "stored" (against the baseline's numbers)
    latency: RatioEstimate | None
    latency_status: str
    accuracy: float | None
    baseline_accuracy: float | None
    accuracy_status: str
    max_slowdown: float
    max_accuracy_drop: float
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True unless latency or accuracy regressed."""
        return "regression" not in (self.latency_status, self.accuracy_status)

    def text(self) -> str:
        """The verdict as lines for a person (and for an AssertionError)."""
        head = "PASS" if self.ok else "FAIL"
        how = (
            f"re-measured side by side, {self.latency.rounds} paired rounds"
            if self.mode == "paired" and self.latency
            else "against the baseline's stored numbers"
        )
        lines = [f"{head}  {self.candidate} vs {self.reference} ({how})"]
        if self.latency is not None:
            e = self.latency
            lines.append(
                f"  latency p50 ratio {e.ratio:.3f} ({e.confidence:.0%} CI {e.low:.3f}-"
                f"{e.high:.3f}), allowed <= {self.max_slowdown:.2f}: {self.latency_status}"
            )
        else:
            lines.append(f"  latency: {self.latency_status}")
        if self.accuracy_status == "skipped":
            lines.append("  accuracy: skipped (not asked for, or none in the baseline)")
        else:
            drop = 100 * (self.baseline_accuracy - self.accuracy)
            lines.append(
                f"  accuracy {100 * self.accuracy:.2f}% vs {100 * self.baseline_accuracy:.2f}% "
                f"(drop {drop:.2f} points, allowed {100 * self.max_accuracy_drop:.2f}): "
                f"{self.accuracy_status}"
            )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """A JSON-ready record."""
        record = dataclasses.asdict(self)
        record["ok"] = self.ok
        return record


def read_baseline(source: str | Path | dict) -> dict:
    """Load and validate a bench JSON document (as written by ``edgesmith bench --json``).

    Raises:
        EdgesmithError: for a missing file, invalid JSON, or a document of another schema.
    """
    if isinstance(source, dict):
        document, where = source, "baseline"
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise EdgesmithError(
                f"baseline not found: {path} (write one with edgesmith bench --json)"
            )
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EdgesmithError(f"baseline {path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        raise EdgesmithError(
            f"baseline {where} is not an edgesmith bench result (schema {found!r}; expected "
            f"{SCHEMA!r} from edgesmith bench --json)"
        )
    version = document.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise EdgesmithError(
            f"baseline {where} has schema_version {version!r}; this edgesmith reads 1 to "
            f"{SCHEMA_VERSION}"
        )
    results = document.get("results")
    if not isinstance(results, list) or not results or not all(map(_valid_result, results)):
        raise EdgesmithError(f"baseline {where} holds no per-model results with latency_ms.p50")
    return document


def _valid_result(record: object) -> bool:
    return (
        isinstance(record, dict)
        and "path" in record
        and isinstance(record.get("latency_ms"), dict)
        and isinstance(record["latency_ms"].get("p50"), (int, float))
    )


def match_entry(candidate: str, baseline: dict) -> dict:
    """The baseline result a candidate is compared with.

    The same path, else the same file or directory name, else the only result there is.

    Raises:
        EdgesmithError: when several results could match and none does by name.
    """
    results = baseline["results"]
    for key in ("path",):
        for record in results:
            if record.get(key) == candidate:
                return record
    name = Path(candidate).name
    for record in results:
        if Path(record.get("path", "")).name == name:
            return record
    if len(results) == 1:
        return results[0]
    names = ", ".join(Path(r.get("path", "?")).name for r in results)
    raise EdgesmithError(
        f"cannot tell which baseline result {candidate} is to be compared with: the baseline "
        f"has {names}; name the candidate like one of them"
    )


def reference_file(entry: dict, base_dir: Path | None) -> Path:
    """Where the baseline's model file is now: as recorded, else beside the baseline JSON.

    A baseline committed with its model and read from another working directory still finds
    the file through the JSON's own directory.
    """
    recorded = Path(entry.get("model_file") or entry["path"])
    if recorded.is_file() or recorded.is_absolute() or base_dir is None:
        return recorded
    beside = base_dir / recorded
    return beside if beside.is_file() else recorded


def settings_of(baseline: dict, entry: dict) -> BenchConfig:
    """Re-measure with the baseline's threads, batch and provider (a fair comparison)."""
    settings = baseline.get("settings") or {}
    threads = entry.get("threads", settings.get("threads", 1))
    return BenchConfig(
        threads=threads,
        batch=int(entry.get("batch", settings.get("batch", 1))),
        provider=settings.get("provider"),
        xnnpack=bool(settings.get("xnnpack", True)),
    )


def compare_latency(
    candidate_step: Step,
    reference_step: Step | None = None,
    *,
    stored_p50_ms: float | None = None,
    plan: TimingPlan = CHECK_TIMING,
    max_slowdown: float = DEFAULT_MAX_SLOWDOWN,
    report: Reporter | None = None,
) -> tuple[RatioEstimate, str]:
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


def _check_limits(max_slowdown: float, max_accuracy_drop: float) -> None:
    if not isinstance(max_slowdown, (int, float)) or not max_slowdown >= 1.0:
        raise EdgesmithError(
            f"max_slowdown is a latency ratio >= 1.0 (1.10 allows 10% slower). "
            f"Received: {max_slowdown!r}"
        )
    if not isinstance(max_accuracy_drop, (int, float)) or not 0 <= max_accuracy_drop < 1:
        raise EdgesmithError(
            "max_accuracy_drop is a fraction in [0, 1) (0.01 allows 1 point). "
            f"Received: {max_accuracy_drop!r}"
        )


def check_one(
    candidate: str,
    baseline: dict,
    *,
    max_slowdown: float = DEFAULT_MAX_SLOWDOWN,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    plan: TimingPlan = CHECK_TIMING,
    any_machine: bool = False,
    report: Reporter | None = None,
    base_dir: Path | None = None,
    data_override: str | None = None,
    skip_accuracy: bool = False,
) -> Verdict:
    """Gate one candidate model against its baseline entry (see the module docstring).

    ``base_dir`` is the baseline JSON's directory, where a relative reference path is also
    looked up. Accuracy is measured on the baseline's data spec, or ``data_override``; not at
    all with ``skip_accuracy``.
    """
    from edgesmith.runtime.accuracy import evaluate

    report = report or (lambda line: None)
    entry = match_entry(candidate, baseline)
    config = settings_of(baseline, entry)
    notes: list[str] = []
    data = baseline.get("data")
    if skip_accuracy:
        data = None
    elif data_override is not None:
        if data and data_override != data:
            notes.append(f"accuracy measured on {data_override}; the baseline's was on {data}")
        data = data_override
    dataset = None
    if data and entry.get("accuracy") is not None:
        from edgesmith.datasets import load_dataset

        dataset = load_dataset(data)
    pixels = dataset.x_eval if dataset is not None else None
    cand = open_model(candidate, config, pixels, data)
    notes += cand.notes
    ref_file = reference_file(entry, base_dir)
    here = machine_info()
    differs = same_machine(baseline.get("machine") or {}, here)
    ref = None
    if ref_file.is_file():
        ref = open_model(str(ref_file), config, pixels, data)
        if sha256_file(ref_file) != entry.get("sha256"):
            notes.append(f"the reference file {ref_file} changed since the baseline was recorded")
        if sha256_file(cand.model.path) == sha256_file(ref_file):
            notes.append("the candidate is the reference file itself (same sha256)")
        if differs:
            notes.append(
                "the baseline was recorded on another machine ("
                + ", ".join(differs)
                + " differ); both files were re-measured here, so the ratio stands"
            )
        mode = "paired"
    else:
        mode = "stored"
        notes.append(f"the reference file {ref_file} is not at hand: compared with stored numbers")
    if mode == "stored" and differs and not any_machine:
        estimate, status = None, "skipped (baseline from another machine)"
        notes.append(
            "the baseline was recorded on another machine ("
            + ", ".join(f"{k}: {(baseline.get('machine') or {}).get(k)!r}" for k in differs)
            + "): its latency says nothing about this one; re-record it here, keep the reference "
            "file beside it, or pass --any-machine"
        )
    else:
        report(f"timing {candidate} against {ref_file if ref else 'the stored p50'}")
        estimate, status = compare_latency(
            cand.step,
            ref.step if ref else None,
            stored_p50_ms=float(entry["latency_ms"]["p50"]),
            plan=plan,
            max_slowdown=max_slowdown,
            report=report,
        )
        if mode == "stored":
            notes.append(
                "the interval covers only this run's noise, not the baseline session's: "
                "keep the reference file at hand for a paired test"
            )
        if status == "noisy":
            notes.append("too noisy to call a regression: rerun with a larger --min-seconds")
        if plan.min_seconds < 1.0:
            notes.append(
                f"timed only {plan.min_seconds:g} s per model: on a shared machine a burst of "
                "other work can shift so short a measurement by 10% or more; give --min-seconds "
                "5 (the default) or more for a verdict to rely on"
            )
    accuracy = None
    if dataset is not None:
        report(f"accuracy of {candidate} on {data}")
        accuracy = evaluate(cand.model, dataset.x_eval, dataset.y_eval)["accuracy"]
    for opened in (cand, ref):
        if opened is not None:
            opened.model.close()
    return Verdict(
        candidate=candidate,
        reference=str(entry.get("path")),
        mode=mode,
        latency=estimate,
        latency_status=status,
        accuracy=accuracy,
        baseline_accuracy=entry.get("accuracy"),
        accuracy_status=accuracy_status(
            accuracy, None if skip_accuracy else entry.get("accuracy"), max_accuracy_drop
        ),
        max_slowdown=max_slowdown,
        max_accuracy_drop=max_accuracy_drop,
        notes=notes,
    )


def check(
    candidates: Sequence[str | Path],
    baseline: str | Path | dict,
    *,
    max_slowdown: float = DEFAULT_MAX_SLOWDOWN,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    plan: TimingPlan = CHECK_TIMING,
    any_machine: bool = False,
    report: Reporter | None = None,
    data: str | None = None,
    skip_accuracy: bool = False,
) -> list[Verdict]:
    """Gate each candidate against the baseline; returns the verdicts (never raises on FAIL).

    ``data`` replaces the baseline's data spec for the accuracy check (the same images under
    another path, say); ``skip_accuracy`` gates latency only.

    Raises:
        EdgesmithError: for a bad baseline, limits, paths or data.
    """
    _check_limits(max_slowdown, max_accuracy_drop)
    if not candidates:
        raise EdgesmithError("check needs at least one candidate model path")
    document = read_baseline(baseline)
    base_dir = None if isinstance(baseline, dict) else Path(baseline).parent
    return [
        check_one(
            str(c),
            document,
            max_slowdown=max_slowdown,
            max_accuracy_drop=max_accuracy_drop,
            plan=plan,
            any_machine=any_machine,
            report=report,
            base_dir=base_dir,
            data_override=data,
            skip_accuracy=skip_accuracy,
        )
        for c in candidates
    ]


def raise_on_failure(verdicts: list[Verdict]) -> None:
    """Raise :class:`CheckFailed` (exit 1) when any verdict failed.

    Raises:
        CheckFailed: naming how many regressed.
    """
    failed = [v for v in verdicts if not v.ok]
    if failed:
        raise CheckFailed(
            f"{len(failed)} of {len(verdicts)} model(s) regressed: "
            + ", ".join(v.candidate for v in failed)
        )


def assert_no_regression(
    candidate: str | Path | Sequence[str | Path],
    baseline: str | Path | dict,
    *,
    max_slowdown: float = DEFAULT_MAX_SLOWDOWN,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    min_runs: int = CHECK_TIMING.min_runs,
    min_seconds: float = CHECK_TIMING.min_seconds,
    any_machine: bool = False,
) -> list[Verdict]:
    """A pytest-friendly gate: raise ``AssertionError`` with the verdict text on a regression.

    Example::

        def test_model_is_not_slower():
            assert_no_regression("build/model.tflite", "baselines/bench.json", max_slowdown=1.1)

    Returns:
        The verdicts (all passing).

    Raises:
        AssertionError: when a candidate regressed, with every verdict's text.
        EdgesmithError: for bad input (a missing file, a baseline of another schema).
    """
    candidates = [candidate] if isinstance(candidate, (str, Path)) else list(candidate)
    plan = dataclasses.replace(CHECK_TIMING, min_runs=min_runs, min_seconds=min_seconds)
    verdicts = check(
        candidates,
        baseline,
        max_slowdown=max_slowdown,
        max_accuracy_drop=max_accuracy_drop,
        plan=plan,
        any_machine=any_machine,
    )
    if not all(v.ok for v in verdicts):
        raise AssertionError("\n".join(v.text() for v in verdicts))
    return verdicts
