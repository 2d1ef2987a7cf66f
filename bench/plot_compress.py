"""Plot compressed CIFAR-10 models: exported-file accuracy against gzipped size and latency.

Reads what the stages measured, nothing typed in: each ``--row LABEL=DIR`` is an
``edgesmith export`` format directory (its manifest holds the file's test accuracy and sizes), and
``--latency FILE`` an ``edgesmith bench --json-out`` run in which some of those files were timed
together (p50 ratios are taken against the first row's file in that run).

    .venv/bin/python bench/plot_compress.py \\
        --row "dense int8=bench/out/compress_v3_b/dense-export/tflite-int8" \\
        --row "channels 16,8,16,16,48,48=bench/out/compress_v4/s16-wd5e-4-int8/tflite-int8" \\
        --latency bench/out/compress_v4/latency-1.json --out docs/compress_cifar10.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--row", action="append", required=True, metavar="LABEL=DIR", help="first row: baseline"
    )
    parser.add_argument("--latency", metavar="FILE", help="edgesmith bench --json-out output")
    parser.add_argument("--budget", type=float, default=0.65, help="latency ratio line to draw")
    parser.add_argument("--out", required=True, help="PNG to write")
    return parser.parse_args()


def read_rows(specs: list[str]) -> list[dict]:
    from edgesmith.core.artifacts import read_artifact

    rows = []
    for spec in specs:
        label, sep, directory = spec.partition("=")
        manifest = Path(directory) / "manifest.json"
        if not sep or not manifest.is_file():
            sys.exit(f"plot_compress: --row {spec!r}: expected LABEL=DIR with DIR/manifest.json")
        metrics = read_artifact(directory, verify=False).metrics
        rows.append(
            {
                "label": label,
                "dir": str(Path(directory).resolve()),
                "accuracy": 100 * metrics.accuracy,
                "gzip_kb": metrics.gzip_bytes / 1000,
                "size_kb": metrics.size_bytes / 1000,
            }
        )
    return rows


def add_latency(rows: list[dict], path: str) -> None:
    from edgesmith.runtime.bench_schema import read_document

    results = read_document(path).results
    p50 = {str(Path(r.path).resolve()): r.latency.p50 for r in results}
    base = p50.get(rows[0]["dir"])
    if base is None:
        sys.exit(f"plot_compress: the first row's file is not in {path}")
    for row in rows:
        if row["dir"] in p50:
            row["latency_ratio"] = p50[row["dir"]] / base


def _panel(axis, rows: list[dict], x: str, xlabel: str, title: str) -> None:
    """One labelled scatter of accuracy against ``row[x]``."""
    for i, row in enumerate(rows):
        axis.scatter(row[x], row["accuracy"], s=30)
        axis.annotate(
            row["label"],
            (row[x], row["accuracy"]),
            fontsize=8,
            xytext=(4, 3 if i % 2 == 0 else -10),  # alternate, so neighbours do not overprint
            textcoords="offset points",
        )
    axis.set_xlabel(xlabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)


def main() -> int:
    args = parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_rows(args.row)
    if args.latency:
        add_latency(rows, args.latency)
    timed = [r for r in rows if "latency_ratio" in r]
    fig, axes = plt.subplots(1, 2 if timed else 1, figsize=(11 if timed else 6, 4.2), squeeze=False)
    _panel(axes[0][0], rows, "gzip_kb", "int8 .tflite, gzipped (KB)", "accuracy vs file size")
    axes[0][0].set_ylabel("test accuracy of the exported file (%)")
    if timed:
        right = axes[0][1]
        _panel(
            right,
            timed,
            "latency_ratio",
            "p50 latency / dense p50 (batch 1, 1 thread, interleaved)",
            "accuracy vs latency",
        )
        right.axvline(args.budget, color="grey", linestyle="--", linewidth=1)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
