"""A device profile's budgets applied to bench results: does each model fit the device?

The profile (``edgesmith.profiles``) says how big, how slow, how hungry and how inaccurate a
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

    Budgets the bench cannot measure (a TFLM arena) or left unset (``None``) are skipped; an
    accuracy budget without ``--data`` is reported with ``ok: None``.
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
