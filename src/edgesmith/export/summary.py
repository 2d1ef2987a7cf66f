"""What ``edgesmith export`` prints: a table of the formats, or their manifests as JSON."""

from __future__ import annotations

from typing import Any

from edgesmith.export.exporter import FailedCheck, FormatResult


def json_record(result: FormatResult) -> dict[str, Any]:
    """A format's ``--json`` record: the written manifest, or what failed."""
    if result.artifact is not None:
        return {"path": str(result.artifact.path), **result.artifact.manifest.to_dict()}
    return {
        "technique": result.name,
        "path": None,
        "metrics": result.metrics.to_dict(),
        "failure": result.failure,
    }


def summary_table(results: list[FormatResult]) -> str:
    """One row per format: size raw/gzip, accuracy, agreement, max abs diff, verdict, path."""
    header = (
        "format",
        "size B",
        "gzip B",
        "accuracy",
        "agreement",
        "max abs diff",
        "parity",
        "path",
    )
    rows = []
    for r in results:
        m = r.metrics
        verdict = "target fail" if r.failed_check is FailedCheck.TARGET else (m.parity or "-")
        rows.append(
            (
                r.name,
                _cell(m.size_bytes, ","),
                _cell(m.gzip_bytes, ","),
                _cell(m.accuracy, ".4f"),
                _cell(m.agreement, ".4f"),
                _cell(m.max_abs_diff, ".3g"),
                verdict,
                str(r.artifact.path) if r.artifact is not None else "(not written)",
            )
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    right = {1, 2, 3, 4, 5}

    def line(row) -> str:
        cells = [
            str(c).rjust(widths[i]) if i in right else str(c).ljust(widths[i])
            for i, c in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    table = [line(header), line(["-" * w for w in widths]), *map(line, rows)]
    return "\n".join([*table, *emulated_lines(results), *firmware_lines(results)])


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def firmware_lines(results: list[FormatResult]) -> list[str]:
    """Under the table, a Cortex-M target's firmware run: one line per published file."""
    lines = []
    for r in results:
        target = r.artifact.manifest.target if r.artifact is not None else None
        if target is None or target.firmware is None:
            continue
        from edgesmith.export.firmware.check import summary_line

        lines.append(summary_line(r.name, target.target, target.firmware.to_dict()))
    return lines


def emulated_lines(results: list[FormatResult]) -> list[str]:
    """Under the table, ``--check-on``'s verdicts: one line per file and emulated CPU."""
    from edgesmith.export.emulated_parity import report_lines

    records = {r.name: [e.to_dict() for e in r.metrics.emulated or ()] for r in results}
    lines = [line for name, found in records.items() for line in report_lines(name, found)]
    emulators = {
        record.target: record.emulator for r in results for record in r.metrics.emulated or ()
    }
    lines += [
        f"emulated {target}: {emulator}; its accuracy is the target's kernels', no latency taken"
        for target, emulator in emulators.items()
    ]
    return lines
