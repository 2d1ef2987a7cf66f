"""Bench results for people: an aligned terminal table and a Markdown report.

The same rows serve both, so what the terminal shows and what the report file says agree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from edgesmith.runtime.bench_schema import BenchDocument, BenchResult

COLUMNS = (
    ("model", "model"),
    ("runtime", "runtime/provider"),
    ("size_kb", "size KB"),
    ("gzip_kb", "gzip KB"),
    ("load_ms", "load ms"),
    ("p50", "p50 ms"),
    ("p90", "p90 ms"),
    ("p99", "p99 ms"),
    ("runs", "runs"),
    ("ips", "img/s"),
    ("gmacs", "GMAC/s"),
    ("accuracy", "top-1 %"),
    ("interval", "95% CI"),
)


def display_name(record: BenchResult, results: Sequence[BenchResult] | None = None) -> str:
    """A short name for a result: the artifact directory's or the file's name.

    When another result in ``results`` has the same name (``a/tflite-int8``, ``b/tflite-int8``),
    the parent directory is kept too, so that the rows stay tellable apart.
    """
    path = Path(record.path)
    name = path.name or str(path)
    others = [Path(r.path).name for r in results or [] if r is not record]
    if name in others and path.parent.name:
        return f"{path.parent.name}/{name}"
    return name


def _kb(size: int | None) -> float | None:
    return None if size is None else size / 1024


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _latency_digits(value: float) -> int:
    return 4 if value < 0.1 else 3 if value < 10 else 1


def row(record: BenchResult, results: Sequence[BenchResult] | None = None) -> dict[str, str]:
    """One result as display strings, keyed like :data:`COLUMNS`."""
    latency = record.latency
    digits = _latency_digits(latency.p50)
    accuracy = record.accuracy
    return {
        "model": display_name(record, results),
        "runtime": f"{record.runtime}/{record.provider}",
        "size_kb": _num(_kb(record.size_bytes), 1),
        "gzip_kb": _num(_kb(record.gzip_bytes), 1),
        "load_ms": _num(record.load_ms, 1),
        "p50": _num(latency.p50, digits),
        "p90": _num(latency.p90, digits),
        "p99": _num(latency.p99, digits),
        "runs": f"{latency.runs:,}",
        "ips": _num(record.throughput_ips, 0),
        "gmacs": _num(record.gmacs_per_s, 1),
        "accuracy": _num(None if accuracy is None else 100 * accuracy, 2),
        "interval": _interval(accuracy, record.num_eval),
    }


def _interval(accuracy: float | None, images: int) -> str:
    """The accuracy's 95% Wilson interval in points, e.g. ``86.3-87.6`` (``-`` without data)."""
    from edgesmith.runtime.stats import wilson_interval

    if accuracy is None or images < 1:
        return "-"
    low, high = wilson_interval(round(accuracy * images), images)
    return f"{100 * low:.1f}-{100 * high:.1f}"


def terminal_table(document: BenchDocument) -> str:
    """The results as an aligned plain-text table, with the settings on a line below."""
    rows = [row(r, document.results) for r in document.results]
    widths = {k: max(len(title), *(len(r[k]) for r in rows)) for k, title in COLUMNS}
    left = {"model", "runtime"}

    def line(values: dict[str, str]) -> str:
        cells = [
            values[k].ljust(widths[k]) if k in left else values[k].rjust(widths[k])
            for k, _ in COLUMNS
        ]
        return "  ".join(cells).rstrip()

    header = line({k: title for k, title in COLUMNS})
    out = [header, "-" * len(header), *(line(r) for r in rows)]
    out.append(settings_line(document))
    return "\n".join(out)


def settings_line(document: BenchDocument) -> str:
    """Threads, batch, timing minimums, data and machine in one line."""
    s = document.settings
    timing = (
        f">= {s.timing.min_runs} runs and >= {s.timing.min_seconds:g} s per model"
        if s.timing is not None
        else "timed"
    )
    m = document.machine
    data = f"data {document.data}" if document.data else "no data (seeded noise inputs)"
    return (
        f"threads {s.threads}, batch {s.batch}, {timing} in interleaved rounds; {data}; "
        f"{m.cpu} ({m.usable_cores}/{m.cores} cores), {m.os}"
    )


def markdown(
    document: BenchDocument, plots: list[Path] | None = None, base: Path | None = None
) -> str:
    """A Markdown report: the table, per-model notes, per-class accuracy, the plots.

    Args:
        document: the bench document.
        plots: PNG files to embed.
        base: the report's directory, so that plot links are relative to it.
    """
    rows = [row(r, document.results) for r in document.results]
    lines = [
        "# edgesmith bench",
        "",
        f"{document.created} · {settings_line(document)}",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "|".join("---" if k in ("model", "runtime") else "---:" for k, _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(r[k] for k, _ in COLUMNS) + " |" for r in rows]
    versions = document.machine.runtime_versions
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    for record in document.results:
        notes, per_class = record.notes, record.per_class
        if not notes and not per_class:
            continue
        lines += [f"## {display_name(record, document.results)}", ""]
        lines += [f"- note: {note}" for note in notes]
        if per_class:
            cells = ", ".join(
                f"{name} {_num(None if acc is None else 100 * acc, 1)}"
                for name, acc in per_class.items()
            )
            lines += [f"- per-class top-1 %: {cells}"]
        lines.append("")
    for plot in plots or []:
        link = os.path.relpath(plot, base) if base is not None else str(plot)
        lines += [f"![{plot.stem}]({Path(link).as_posix()})", ""]
    return "\n".join(lines).rstrip() + "\n"
