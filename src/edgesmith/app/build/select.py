"""Choosing the candidate: every budget met, then the best accuracy, then the lower median latency.

The per-budget verdicts are the bench's own (``edgesmith.runtime.budgets``, the same function
``edgesmith bench --device`` uses); the budgets the bench cannot measure are read from the
export's target check: the TFLM arena (measured by TFLM), and for an Ethos-U device Vela's
estimate of SRAM, flash, NPU operator share and inference time (which replaces the host's
latency), and for a Cortex-M device the firmware's flash and RAM from its ELF. When nothing
fits, the closest candidate is the one whose worst miss, relative to its limit, is smallest,
and the message says by how much it misses.
"""

from __future__ import annotations

from typing import Any

from edgesmith.app.build.candidates import Exported
from edgesmith.core.errors import CheckFailed
from edgesmith.runtime import BenchResult
from edgesmith.runtime.budgets import budget_verdicts, target_verdicts

UNITS = {
    "max_size_kb": "KB",
    "max_latency_ms": "ms",
    "min_accuracy": "",
    "max_ram_mb": "MB",
    "max_arena_kb": "KB",
    "max_sram_kb": "KB",
    "max_flash_kb": "KB",
    "max_ram_kb": "KB",
    "min_npu_ops": "",
}


def candidate_row(exported: Exported, record: BenchResult | None, budgets: dict[str, Any]) -> dict:
    """One table row: the numbers a choice rests on and each budget's verdict.

    Args:
        exported: the candidate's exported file (or its failed export).
        record: the file's bench record, or None when it was not benchmarked.
        budgets: the profile's budgets as a dict.
    """
    row: dict[str, Any] = {
        "name": exported.name,
        "candidate": exported.candidate,
        "format": exported.format,
        "path": str(exported.artifact.path) if exported.artifact is not None else None,
        "id": exported.artifact.id if exported.artifact is not None else None,
        "accuracy": None,
        "size_bytes": None,
        "p50_ms": None,
        "budgets": {},
        "fits": False,
        "failure": exported.failure,
        "note": exported.note,
    }
    if record is None:
        return row
    row.update(
        accuracy=record.accuracy,
        size_bytes=record.size_bytes,
        p50_ms=record.latency.p50,
        peak_rss_mb=record.peak_rss_mb,
        runtime=record.runtime,
        provider=record.provider,
    )
    verdicts = {name: v.to_dict() for name, v in budget_verdicts(record, budgets).items()}
    target = exported.artifact.manifest.target if exported.artifact else None
    verdicts.update(target_verdicts(target, budgets))  # TFLM's arena, Vela's estimate
    if target is not None and target.vela is not None:
        row["vela"] = target.vela.to_dict()
    if target is not None and target.firmware is not None:
        row["firmware"] = target.firmware.to_dict()
    row["budgets"] = verdicts
    row["fits"] = row["failure"] is None and all(v["ok"] is True for v in verdicts.values())
    return row


def choose(rows: list[dict]) -> dict | None:
    """The fitting row with the best accuracy (ties: smaller p50), or None when none fits."""
    fitting = [r for r in rows if r["fits"]]
    if not fitting:
        return None
    return min(fitting, key=lambda r: (-(r["accuracy"] or 0.0), r["p50_ms"]))


def miss(verdict: dict, budget: str) -> float:
    """How far a measured value is outside its budget, as a fraction of the limit (0 inside)."""
    if verdict["ok"] is not False:
        return 0.0
    value, limit = verdict["value"], verdict["limit"]
    if budget.startswith("min_"):
        return (limit - value) / limit
    return (value - limit) / limit


def worst_miss(row: dict) -> float:
    """A row's largest relative miss (infinite for a row that was never measured)."""
    if not row["budgets"] or row["failure"] is not None:
        return float("inf")
    return max((miss(v, b) for b, v in row["budgets"].items()), default=0.0)


def _value_text(budget: str, value: float) -> str:
    if budget == "min_accuracy":
        return f"{100 * value:.2f}%"
    return f"{value:.4g} {UNITS[budget]}".rstrip()


def nothing_fits(rows: list[dict], device: str) -> CheckFailed:
    """The error for a build where no candidate meets every budget.

    It names each budget that no candidate met (with the best value any candidate reached),
    and the closest candidate with what it misses and by how much.
    """
    measured = [r for r in rows if r["budgets"] and r["failure"] is None]
    if not measured:
        reasons = "; ".join(f"{r['name']}: {r['failure']}" for r in rows if r["failure"])
        return CheckFailed(
            f"device {device}: no candidate could be exported and measured: {reasons}"
        )
    parts = []
    for budget in measured[0]["budgets"]:
        verdicts = [r["budgets"][budget] for r in measured]
        if any(v["ok"] is not False for v in verdicts):
            continue
        best = min(verdicts, key=lambda v: miss(v, budget))
        parts.append(
            f"{budget} {_value_text(budget, best['limit'])} (best reached "
            f"{_value_text(budget, best['value'])})"
        )
    closest = min(measured, key=worst_miss)
    misses = [
        f"{budget} by {_distance(budget, v)} ({_value_text(budget, v['value'])} vs "
        f"{_value_text(budget, v['limit'])}, {100 * miss(v, budget):.1f}%)"
        for budget, v in closest["budgets"].items()
        if v["ok"] is False
    ]
    unmeasured = [b for b, v in closest["budgets"].items() if v["ok"] is None]
    if unmeasured:
        misses.append(f"not measured: {', '.join(unmeasured)}")
    head = f"no candidate meets the budgets of device {device}" + (
        f": nothing met {'; '.join(parts)}" if parts else ""
    )
    return CheckFailed(f"{head}; closest is {closest['name']}, which misses {', '.join(misses)}")


def _distance(budget: str, verdict: dict) -> str:
    gap = abs(verdict["value"] - verdict["limit"])
    if budget == "min_accuracy":
        return f"{100 * gap:.2f} points"
    return f"{gap:.4g} {UNITS[budget]}".rstrip()


def _vela_cells(record: dict | None) -> list[str]:
    if not record:
        return ["-", "-", "-"]
    return [
        f"{record['inference_ms']:.3f}",
        f"{record['npu_ops']}/{record['cpu_ops']}",
        f"{record['sram_kb']:.1f}",
    ]


def _firmware_cells(record: dict | None) -> list[str]:
    if not record:
        return ["-", "-", "-", "-"]
    return [
        f"{record['flash_kb']:.1f}",
        f"{record['ram_kb']:.1f}",
        f"{record['instructions_per_inference']:,}",
        f"{100 * record['agreement']:.1f}",
    ]


def chosen_line(chosen: dict, bundle: object) -> str:
    """The line under the table: the chosen candidate's numbers and where its bundle is."""
    return (
        f"chosen: {chosen['name']} - top-1 {100 * chosen['accuracy']:.2f}%, "
        f"{chosen['size_bytes'] / 1024:,.1f} KB, p50 {chosen['p50_ms']:.4f} ms; bundle {bundle}"
    )


def table(rows: list[dict], chosen: dict | None) -> str:
    """The candidates as an aligned plain-text table, the chosen one marked with ``*``."""
    budgets = sorted({b for r in rows for b in r["budgets"]})
    vela = any(r.get("vela") for r in rows)  # an Ethos-U device: Vela's estimate beside
    extra = ["NPU ms (Vela)", "NPU/CPU ops", "SRAM KB"] if vela else []
    firmware = any(r.get("firmware") for r in rows)  # a Cortex-M device: the QEMU firmware
    if firmware:
        extra += ["flash KB (fw)", "RAM KB (fw)", "instr/inference", "agree LiteRT %"]
    header = ["", "candidate", "top-1 %", "size KB", "p50 ms", *extra, *budgets]
    lines = []
    for r in rows:
        marks = []
        for b in budgets:
            v = r["budgets"].get(b)
            marks.append("-" if v is None else {True: "pass", False: "FAIL", None: "?"}[v["ok"]])
        lines.append(
            [
                "*" if chosen is not None and r is chosen else "",
                r["name"],
                "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}",
                "-" if r["size_bytes"] is None else f"{r['size_bytes'] / 1024:,.1f}",
                "-" if r["p50_ms"] is None else f"{r['p50_ms']:.4f}",
                *(_vela_cells(r.get("vela")) if vela else []),
                *(_firmware_cells(r.get("firmware")) if firmware else []),
                *marks,
            ]
            + ([f"export failed: {r['failure']}"] if r["failure"] else [])
        )
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        cols = cells[: len(header)]
        out = [c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(cols)]
        return "  ".join(out + cells[len(header) :]).rstrip()

    text = [fmt(header), "-" * len(fmt(header)), *(fmt(line) for line in lines)]
    return "\n".join(text)
