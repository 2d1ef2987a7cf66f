"""A device profile's budgets applied to bench results: does each model fit the device?

The profile (``edgesmith.core.profiles``) says how big, how slow, how hungry and how inaccurate a
model may be on its device; the bench measured exactly those quantities, so the verdict is a
comparison per budget, recorded beside the numbers.
"""

from __future__ import annotations

# budget name -> (how to read the measured value from a bench record, True if it is a ceiling)
CHECKS = {
    "max_size_kb": (lambda r: r["size_bytes"] / 1024, True),
    "max_latency_ms": (lambda r: r["latency_ms"]["p50"], True),
    "max_ram_mb": (lambda r: r.get("peak_rss_mb"), True),
    "min_accuracy": (lambda r: r.get("accuracy"), False),
}


def budget_verdicts(record: dict, budgets: dict) -> dict[str, dict]:
    """``{budget: {"limit", "value", "ok"}}`` for each budget the profile sets and bench measured.

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
        verdicts[name] = {"limit": limit, "value": value, "ok": ok}
    return verdicts


def target_verdicts(target: dict | None, budgets: dict) -> dict[str, dict]:
    """Verdicts for the budgets the export's target check measured, not the bench.

    A TFLM target record holds the arena TFLM allocated (``arena_bytes``) or, where TFLM was
    not installed, an estimate (``arena_bytes_estimate``); an Ethos-U record holds Vela's
    estimate, which replaces the host's latency for ``max_latency_ms`` (the host does not run
    the NPU). The verdict's ``source`` says which it is.
    """
    target = target or {}
    values: dict[str, tuple[float | None, str]] = {}
    if "arena_bytes" in target:
        values["max_arena_kb"] = (target["arena_bytes"] / 1024, "measured by TFLM")
    elif "arena_bytes_estimate" in target:
        values["max_arena_kb"] = (target["arena_bytes_estimate"] / 1024, "estimate")
    vela = target.get("vela")
    if vela:
        label = vela.get("label", "Vela estimate")
        values["max_latency_ms"] = (vela["inference_ms"], label)
        values["max_sram_kb"] = (vela["sram_kb"], label)
        values["max_flash_kb"] = (vela["flash_kb"] + vela.get("dram_kb", 0.0), label)
        values["min_npu_ops"] = (vela["npu_fraction"], label)
    verdicts = {}
    for name in ("max_arena_kb", "max_latency_ms", "max_sram_kb", "max_flash_kb", "min_npu_ops"):
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


def describe(name: str, verdicts: dict[str, dict]) -> str:
    """One line: ``name fits`` or which budgets it misses, with the numbers."""
    missed = [
        f"{budget} {v['value']:.4g} vs {v['limit']:g}"
        for budget, v in verdicts.items()
        if v["ok"] is False
    ]
    unknown = [budget for budget, v in verdicts.items() if v["ok"] is None]
    text = f"{name}: " + ("over budget: " + "; ".join(missed) if missed else "fits the budgets")
    if unknown:
        text += f" (not measured: {', '.join(unknown)})"
    return text
