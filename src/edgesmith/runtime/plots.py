"""PNG plots of bench results, drawn only when matplotlib is installed (it is optional).

Two figures: the accuracy / latency / size trade-off with its Pareto front (the models that no
other model beats on both latency and accuracy), and each model's latency distribution. The
figures are built on matplotlib's object API with the Agg canvas, so no global pyplot state or
display backend is touched in the user's process.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.outputs import record_written
from edgesmith.runtime.bench_schema import BenchDocument
from edgesmith.runtime.report import display_name

PLOT_FILES = ("tradeoff.png", "latency.png")
"""What ``write_plots`` writes into its folder (and nothing else)."""

INSTALL_HINT = "plots need matplotlib: pip install matplotlib"


def plots_available() -> bool:
    """True when matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def pareto_front(latencies: list[float], accuracies: list[float | None]) -> list[int]:
    """Indices of the models no other model beats on both latency (lower) and accuracy (higher).

    Models without an accuracy are left out.
    """
    points = [(lat, acc, i) for i, (lat, acc) in enumerate(zip(latencies, accuracies, strict=True))]
    points = [p for p in points if p[1] is not None]
    front = []
    for lat, acc, i in points:
        dominated = any(
            (lat2 <= lat and acc2 >= acc) and (lat2 < lat or acc2 > acc)
            for lat2, acc2, j in points
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: latencies[i])


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(figure)
    return figure


def tradeoff_plot(document: BenchDocument, out: Path) -> Path:
    """Accuracy against p50 latency, marker area by file size, Pareto front joined."""
    results = document.results
    latencies = [r.latency.p50 for r in results]
    accuracies = [r.accuracy for r in results]
    sizes = np.array([r.size_bytes or 0 for r in results], dtype=float)
    figure = _figure(7, 4.5)
    axes = figure.add_subplot()
    have = [i for i, a in enumerate(accuracies) if a is not None]
    if not have:
        axes.text(0.5, 0.5, "no accuracy measured (bench with --data)", ha="center")
    area = 40 + 400 * sizes / sizes.max()
    for i in have:
        axes.scatter(latencies[i], 100 * accuracies[i], s=area[i], alpha=0.6)
        axes.annotate(
            f"{display_name(results[i], results)}\n{sizes[i] / 1024:,.0f} KB",
            (latencies[i], 100 * accuracies[i]),
            textcoords="offset points",
            xytext=(6, 6 - 22 * (i % 3)),  # staggered: close models keep readable labels
            fontsize=8,
        )
    front = pareto_front(latencies, accuracies)
    if len(front) > 1:
        axes.plot(
            [latencies[i] for i in front],
            [100 * accuracies[i] for i in front],
            "k--",
            lw=1,
            label="Pareto front",
        )
        axes.legend(loc="lower right", fontsize=8)
    axes.margins(x=0.15, y=0.3)  # room for the labels beside the outermost points
    axes.set_xlabel("latency p50 (ms, lower is better)")
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_title(f"accuracy vs latency vs size (marker area ~ file size), data {document.data}")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path = out / PLOT_FILES[0]
    figure.savefig(path)
    return path


def latency_plot(document: BenchDocument, rounds: list[list[np.ndarray]], out: Path) -> Path:
    """Each model's latency distribution (box from p5 to p95 whiskers, p99 marked)."""
    results = document.results
    samples = [np.concatenate(r) for r in rounds]
    figure = _figure(7, 1.2 + 0.6 * len(results))
    axes = figure.add_subplot()
    try:
        axes.boxplot(samples, orientation="horizontal", whis=(5, 95), showfliers=False)
    except TypeError:  # matplotlib < 3.10 has no orientation argument
        axes.boxplot(samples, vert=False, whis=(5, 95), showfliers=False)
    for i, record in enumerate(results, start=1):
        p99 = record.latency.p99
        axes.plot([p99], [i], "rx")
    axes.set_yticks(
        range(1, len(results) + 1), [display_name(r, results) for r in results], fontsize=8
    )
    axes.set_xlabel("latency per inference (ms); box p25-p75, whiskers p5-p95, x = p99")
    axes.set_title(
        f"latency distribution, batch {document.settings.batch}, "
        f"threads {document.settings.threads}"
    )
    axes.grid(alpha=0.3, axis="x")
    figure.tight_layout()
    path = out / PLOT_FILES[1]
    figure.savefig(path)
    return path


def write_plots(
    document: BenchDocument, rounds: list[list[np.ndarray]], out: str | Path
) -> list[Path]:
    """Write both plots into ``out`` (created if needed).

    Raises:
        EdgesmithError: when matplotlib is not installed (the message says how to get it).
    """
    if not plots_available():
        raise EdgesmithError(INSTALL_HINT)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgesmithError(f"--plots {out} is a file; expected a directory")
    out.mkdir(parents=True, exist_ok=True)
    written = [tradeoff_plot(document, out), latency_plot(document, rounds, out)]
    for path in written:
        record_written(path)
    return written
