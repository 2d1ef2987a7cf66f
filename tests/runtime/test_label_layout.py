"""The trade-off plot's labels: laid out so that none overlaps another, checked numerically."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from edgesmith.runtime.label_layout import any_overlap, boxes_intersect, place_labels
from edgesmith.runtime.plots import MAX_TEXT_LABELS, plots_available, tradeoff_figure


def crowded(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` anchors within 30 pixels of each other, labels 110 x 24 pixels (a fixed seed)."""
    rng = np.random.default_rng(seed)
    anchors = 300 + rng.uniform(-15, 15, size=(n, 2))
    sizes = np.tile([110.0, 24.0], (n, 1))
    return anchors, sizes


def test_box_intersection():
    a = np.array([0, 0, 10, 10])
    assert boxes_intersect(a, np.array([5, 5, 15, 15]))
    assert not boxes_intersect(a, np.array([10, 0, 20, 10]))  # touching edges do not overlap
    assert boxes_intersect(a, np.array([11, 0, 20, 10]), pad=1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crowded_labels_never_overlap_each_other_or_the_markers(seed):
    anchors, sizes = crowded(12, seed)
    markers = np.column_stack([anchors - 5, anchors + 5])
    boxes, placed = place_labels(anchors, sizes, (0, 0, 800, 600), avoid=markers)
    assert placed.all()
    assert not any_overlap(boxes)
    for box in boxes:
        assert not any(boxes_intersect(box, m) for m in markers)
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= 800 and box[3] <= 600
    assert np.allclose(boxes[:, 2] - boxes[:, 0], 110) and np.allclose(
        boxes[:, 3] - boxes[:, 1], 24
    )


def test_the_layout_is_deterministic_and_a_lone_label_stays_close():
    anchors, sizes = crowded(8)
    first, _ = place_labels(anchors, sizes, (0, 0, 800, 600))
    again, _ = place_labels(anchors, sizes, (0, 0, 800, 600))
    assert np.array_equal(first, again)
    (box,), (ok,) = place_labels(anchors[:1], sizes[:1], (0, 0, 800, 600))
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    assert ok and np.linalg.norm(centre - anchors[0]) < 80


def test_labels_that_cannot_fit_are_reported_not_overlapped():
    anchors, sizes = crowded(12)
    boxes, placed = place_labels(anchors, sizes, (250, 250, 420, 360))
    assert not placed.all()
    assert not any_overlap(boxes[placed])


def _document(points: list[tuple[str, float, float]]) -> SimpleNamespace:
    results = [
        SimpleNamespace(
            path=path, latency=SimpleNamespace(p50=p50), accuracy=acc, size_bytes=80_000 + 9_000 * k
        )
        for k, (path, p50, acc) in enumerate(points)
    ]
    return SimpleNamespace(results=results, data="cifar10")


def _label_boxes(figure) -> np.ndarray:
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    (axes,) = figure.axes
    extents = [t.get_window_extent(renderer) for t in axes.texts]
    return np.array([[e.x0, e.y0, e.x1, e.y1] for e in extents])


@pytest.mark.skipif(not plots_available(), reason="matplotlib is not installed")
def test_the_demo_pair_that_used_to_overlap_is_readable():
    figure = tradeoff_figure(
        _document(
            [
                ("out/dense/tflite-int8", 0.200, 0.861),
                ("out/distilled/tflite-int8", 0.201, 0.862),
                ("out/dense/tflite-fp32", 0.520, 0.874),
                ("out/pruned/tflite-int8", 0.190, 0.842),
            ]
        )
    )
    (axes,) = figure.axes
    texts = [t.get_text() for t in axes.texts]
    assert any(t.startswith("dense/tflite-int8") for t in texts)
    assert any(t.startswith("distilled/tflite-int8") for t in texts)
    assert not any_overlap(_label_boxes(figure))


@pytest.mark.skipif(not plots_available(), reason="matplotlib is not installed")
def test_many_points_are_numbered_with_a_legend():
    rng = np.random.default_rng(3)
    n = MAX_TEXT_LABELS + 6
    points = [
        (f"out/m{k}/tflite-int8", 0.2 + rng.uniform(0, 0.01), 0.86 + rng.uniform(0, 0.004))
        for k in range(n)
    ]
    figure = tradeoff_figure(_document(points))
    (axes,) = figure.axes
    assert [t.get_text() for t in axes.texts] == [str(k + 1) for k in range(n)]
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert legend[0].startswith("1  m0/tflite-int8")
    assert not any_overlap(_label_boxes(figure))
