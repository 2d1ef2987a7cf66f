"""PNG plots of bench results, drawn only when matplotlib is installed (it is optional).

Two figures: the accuracy / latency / size trade-off with its Pareto front (the models that no
other model beats on both latency and accuracy), and each model's latency distribution. The
figures are built on matplotlib's object API with the Agg canvas, so no global pyplot state or
display backend is touched in the user's process.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

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


MAX_TEXT_LABELS = 6
"""Above this many models the trade-off plot numbers its points and names them in a legend."""


def tradeoff_plot(document: BenchDocument, out: Path) -> Path:
    """Write :func:`tradeoff_figure` as ``tradeoff.png`` in ``out``."""
    path = out / PLOT_FILES[0]
    tradeoff_figure(document).savefig(path)
    return path


def tradeoff_figure(document: BenchDocument) -> Any:
    """Accuracy against p50 latency, marker area by file size, Pareto front joined.

    Labels are laid out by :func:`~edgesmith.runtime.label_layout.place_labels`, so close models
    never print over each other; with more than :data:`MAX_TEXT_LABELS` models (or when the
    full labels cannot all fit) each point carries a number and a legend beside the axes names it.
    """
    results = document.results
    latencies = [r.latency.p50 for r in results]
    accuracies = [r.accuracy for r in results]
    sizes = np.array([r.size_bytes or 0 for r in results], dtype=float)
    have = [i for i, a in enumerate(accuracies) if a is not None]
    names = [f"{display_name(results[i], results)}, {sizes[i] / 1024:,.0f} KB" for i in have]
    numbered = len(have) > MAX_TEXT_LABELS
    figure = _figure(9.5 if numbered else 7, 4.5)
    axes = figure.add_subplot()
    if not have:
        axes.text(0.5, 0.5, "no accuracy measured (bench with --data)", ha="center")
    area = 40 + 400 * sizes / max(sizes.max(), 1.0)
    for k, i in enumerate(have):
        axes.scatter(
            latencies[i], 100 * accuracies[i], s=area[i], alpha=0.6, label=f"{k + 1}  {names[k]}"
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
    axes.margins(x=0.2, y=0.35)  # room for the labels beside the outermost points
    axes.set_xlabel("latency p50 (ms, lower is better)")
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_title(f"accuracy vs latency vs size (marker area ~ file size), data {document.data}")
    axes.grid(alpha=0.3)
    points = [(latencies[i], 100 * accuracies[i]) for i in have]
    figure.tight_layout()
    if not numbered:
        if len(front) > 1:
            _legend(axes, outside=False, only="Pareto front")
        numbered = bool(have) and not _label(figure, axes, points, area[have], names)
    if numbered:  # many points, or full labels that cannot all fit: numbers and a legend
        figure.set_size_inches(9.5, 4.5)
        figure.tight_layout()
        _legend(axes, outside=True)
        numbers = [str(k + 1) for k in range(len(have))]
        _label(figure, axes, points, area[have], numbers, always=True)
    return figure


def _legend(axes, *, outside: bool, only: str | None = None) -> None:
    handles, labels = axes.get_legend_handles_labels()
    if only is not None:
        handles = [h for h, t in zip(handles, labels, strict=True) if t == only]
        labels = [only] * len(handles)
    if outside:
        axes.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=7,
            borderaxespad=0.0,
            markerscale=0.5,
            frameon=False,
        )
        axes.figure.subplots_adjust(right=0.62)
    else:
        axes.legend(handles, labels, loc="lower right", fontsize=8)


def _label(figure, axes, points, areas, texts, *, always: bool = False) -> bool:
    """Lay out and draw the labels; False (and nothing drawn) when one found no free spot.

    With ``always`` (the last resort, numbers beside a legend) they are drawn anyway: every
    label that found a spot is clear of the others, one that found none sits beside its point.

    Runs after the figure's layout is final: the layout is in display pixels, so a later
    ``tight_layout`` would move the points from under their labels.
    """
    from edgesmith.runtime.label_layout import place_labels

    renderer = figure.canvas.get_renderer()
    anchors = axes.transData.transform(np.asarray(points, dtype=float))
    drawn = [axes.text(0, 0, t, fontsize=8) for t in texts]
    extents = [t.get_window_extent(renderer) for t in drawn]
    for t in drawn:
        t.remove()
    sizes = np.array([[e.width, e.height] for e in extents])
    radius = np.sqrt(np.asarray(areas, dtype=float) / np.pi) * figure.dpi / 72.0
    markers = np.column_stack([anchors - radius[:, None], anchors + radius[:, None]])
    legend = axes.get_legend()
    if legend is not None and legend.get_bbox_to_anchor().x0 < axes.get_window_extent().x1:
        e = legend.get_window_extent(renderer)
        markers = np.vstack([markers, [[e.x0, e.y0, e.x1, e.y1]]])
    frame = axes.get_window_extent(renderer)
    boxes, placed = place_labels(
        anchors, sizes, (frame.x0, frame.y0, frame.x1, frame.y1), avoid=markers, gap=2.0
    )
    if not placed.all() and not always:
        return False
    for (px, py), box, text, r in zip(anchors, boxes, texts, radius, strict=True):
        # a leader line once the label stands clear of its own marker (a crowd pushed it out)
        gap_x = max(box[0] - px, 0.0, px - box[2])
        gap_y = max(box[1] - py, 0.0, py - box[3])
        far = np.hypot(gap_x, gap_y) > r + 6
        axes.annotate(
            text,
            (px, py),
            xycoords="figure pixels",
            xytext=(box[0], box[1]),
            textcoords="figure pixels",
            fontsize=8,
            ha="left",
            va="bottom",
            arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.4"} if far else None,
        )
    return True


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
