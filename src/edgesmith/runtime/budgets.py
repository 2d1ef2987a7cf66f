"""A device profile's budgets applied to bench results: does each model fit the device?

The profile (``edgesmith.core.profiles``) says how big, how slow, how hungry and how inaccurate a
model may be on its device; the bench measured exactly those quantities, so the verdict is a
comparison per budget, recorded beside the numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from edgesmith.core.errors import CheckFailed, EdgesmithError
from edgesmith.core.manifest import Target
from edgesmith.core.profiles import DeviceProfile
from edgesmith.runtime.bench_schema import BenchDocument, BenchResult, BudgetVerdict

# budget name -> (how to read the measured value from a bench record, True if it is a ceiling)
CHECKS = {
    "max_size_kb": (lambda r: None if r.size_bytes is None else r.size_bytes / 1024, True),
    "max_latency_ms": (lambda r: r.latency.p50, True),
    "max_ram_mb": (lambda r: r.peak_rss_mb, True),
    "min_accuracy": (lambda r: r.accuracy, False),
}


def budget_verdicts(record: BenchResult, budgets: dict) -> dict[str, BudgetVerdict]:
    """``{budget: BudgetVerdict}`` for each budget the profile sets and bench measured.

    Budgets the bench cannot measure (a TFLM arena, Vela's SRAM and flash: see
    :func:`target_verdicts`) or left unset (``None``) are skipped; an accuracy budget without
    ``--data`` is reported with ``ok: None``.
    """
    verdicts = {}
    for name, (read, ceiling) in CHECKS.items():
        limit = budgets.get(name)
        if limit is None:
            continue
        value = read(record)
        ok = None if value is None else (value <= limit if ceiling else value >= limit)
        verdicts[name] = BudgetVerdict(limit=limit, value=value, ok=ok)
    return verdicts


def target_verdicts(target: Target | None, budgets: dict) -> dict[str, dict]:
    """Verdicts for the budgets the export's target check measured, not the bench.

    A TFLM target record holds the arena TFLM allocated (``arena_bytes``) or, where TFLM was
    not installed, an estimate (``arena_bytes_estimate``); an Ethos-U record holds Vela's
    estimate, which replaces the host's latency for ``max_latency_ms`` (the host does not run
    the NPU); a Cortex-M firmware record its ELF's flash and RAM and the arena it used. The
    verdict's ``source`` says which it is.
    """
    values: dict[str, tuple[float | None, str]] = {}
    if target is not None and target.arena_bytes is not None:
        values["max_arena_kb"] = (target.arena_bytes / 1024, "measured by TFLM")
    elif target is not None and target.arena_bytes_estimate is not None:
        values["max_arena_kb"] = (target.arena_bytes_estimate / 1024, "estimate")
    firmware = target.firmware if target is not None else None
    if firmware is not None:  # a Cortex-M firmware's ELF and the arena it used in QEMU
        label = f"firmware ELF ({firmware.board})"
        values["max_flash_kb"] = (firmware.flash_kb, label)
        values["max_ram_kb"] = (firmware.ram_kb, label)
        values["max_arena_kb"] = (firmware.arena_used_bytes / 1024, "used by the firmware")
    vela = target.vela if target is not None else None
    if vela is not None:
        label = vela.label
        values["max_latency_ms"] = (vela.inference_ms, label)
        values["max_sram_kb"] = (vela.sram_kb, label)
        values["max_flash_kb"] = (vela.flash_kb + vela.dram_kb, label)
        values["min_npu_ops"] = (vela.npu_fraction, label)
    verdicts = {}
    names = ("max_arena_kb", "max_latency_ms", "max_sram_kb", "max_flash_kb", "max_ram_kb")
    for name in (*names, "min_npu_ops"):
        limit = budgets.get(name)
        if limit is None or (name not in values and name == "max_latency_ms"):
            continue
        value, source = values.get(name, (None, "not measured"))
        ok = (
            None
            if value is None
            else (value >= limit if name.startswith("min_") else value <= limit)
        )
        verdicts[name] = {"limit": limit, "value": value, "ok": ok, "source": source}
    return verdicts


def describe(name: str, verdicts: Mapping[str, BudgetVerdict]) -> str:
    """One line: ``name fits`` or which budgets it misses, with the numbers."""
    missed = [
        f"{budget} {v.value:.4g} vs {v.limit:g}" for budget, v in verdicts.items() if v.ok is False
    ]
    unknown = [budget for budget, v in verdicts.items() if v.ok is None]
    text = f"{name}: " + ("over budget: " + "; ".join(missed) if missed else "fits the budgets")
    if unknown:
        text += f" (not measured: {', '.join(unknown)})"
    return text


def judge(document: BenchDocument, profile: DeviceProfile) -> BenchDocument:
    """The document with the device profile recorded and each result's budget verdicts."""
    budgets = profile.budgets.to_dict()
    results = tuple(
        dataclasses.replace(r, budgets=budget_verdicts(r, budgets)) for r in document.results
    )
    return document.replace(device=profile, results=results)


def describe_all(document: BenchDocument, device: str) -> str:
    """``device NAME:`` and one :func:`describe` line per judged result."""
    from edgesmith.runtime.report import display_name

    lines = [f"device {device}:"]
    for record in document.results:
        lines.append(f"  {describe(display_name(record, document.results), record.budgets or {})}")
    return "\n".join(lines)


def raise_over_budget(results: Sequence[BenchResult], device: str) -> None:
    """Exit 1 (:class:`CheckFailed`, like every failed check) when a model misses a budget.

    A budget that could not be measured (accuracy without ``--data``) is reported, not failed.

    Raises:
        CheckFailed: naming the models over budget.
    """
    from edgesmith.runtime.report import display_name

    over = [
        display_name(record, results)
        for record in results
        if any(v.ok is False for v in (record.budgets or {}).values())
    ]
    if over:
        raise CheckFailed(
            f"{len(over)} of {len(results)} model(s) over the budgets of device {device}: "
            + ", ".join(over)
        )


def check_profile_formats(paths: Sequence[str], profile: DeviceProfile) -> None:
    """Refuse models a profile's runtime cannot run (a .onnx file for a LiteRT device).

    Raises:
        EdgesmithError: naming the file and the profile's runtime.
    """
    from edgesmith.runtime.source import locate

    wanted = "tflite" if profile.runtime == "litert" else "onnx"
    for path in paths:
        fmt = locate(path).format
        if fmt != wanted:
            raise EdgesmithError(
                f"device {profile.name} runs {profile.runtime} ({wanted} files); {path} is {fmt}"
            )
