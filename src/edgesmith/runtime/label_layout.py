"""Place text labels beside scatter points so that no two labels (or a label and a marker) overlap.

matplotlib draws each annotation where it is told, so two models with close latency and accuracy
(``dense/tflite-int8`` and ``distilled/tflite-int8`` in the demo) used to print on top of each
other. This is a small deterministic greedy placement in display pixels, with no dependency
beyond numpy (``adjustText`` would add a package to the plots extra and moves labels by an
iterative force simulation whose result is not guaranteed overlap-free): each label, in a fixed
order, takes the first free spot on rings of growing radius around its point, inside the axes.
A label that finds no free spot is reported, so the caller can fall back to short labels and a
legend. The plot joins a label that moved away from its point with a leader line.
"""

from __future__ import annotations

import math

import numpy as np

# Directions tried on each ring, right of the point first (where a reader looks for a label),
# then above, below and left.
_ANGLES = tuple(math.radians(a) for a in (30, -30, 90, -90, 150, -150, 0, 180, 60, -60, 120, -120))


def boxes_intersect(a: np.ndarray, b: np.ndarray, pad: float = 0.0) -> bool:
    """Whether boxes ``(x0, y0, x1, y1)`` ``a`` and ``b`` overlap, each grown by ``pad``."""
    return bool(
        a[0] - pad < b[2] + pad
        and b[0] - pad < a[2] + pad
        and a[1] - pad < b[3] + pad
        and b[1] - pad < a[3] + pad
    )


def place_labels(
    anchors: np.ndarray,
    sizes: np.ndarray,
    bounds: tuple[float, float, float, float],
    *,
    avoid: np.ndarray | None = None,
    gap: float = 4.0,
    step: float = 10.0,
    pad: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes for labels of the given sizes beside their anchors, none overlapping another.

    Args:
        anchors: ``(n, 2)`` points (display pixels) the labels belong to.
        sizes: ``(n, 2)`` label widths and heights (pixels).
        bounds: ``(x0, y0, x1, y1)`` every box must lie inside (the axes).
        avoid: ``(m, 4)`` boxes no label may cover (the markers).
        gap: distance of the first ring from the point.
        step: how much each further ring is farther.
        pad: the least clearance between two boxes.

    Returns:
        ``(boxes, placed)``: ``(n, 4)`` boxes ``(x0, y0, x1, y1)`` and which labels found a free
        spot. An unplaced label's box is its first candidate (it may overlap: redraw those
        labels shorter, or list them in a legend).
    """
    anchors = np.asarray(anchors, dtype=float).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=float).reshape(-1, 2)
    obstacles = [] if avoid is None else [np.asarray(b, dtype=float) for b in avoid]
    x0, y0, x1, y1 = bounds
    reach = math.hypot(x1 - x0, y1 - y0)
    boxes = np.zeros((len(anchors), 4))
    placed = np.zeros(len(anchors), dtype=bool)
    taken: list[np.ndarray] = []
    # left to right, then bottom to top: a fixed order makes the layout a function of the input
    for i in sorted(range(len(anchors)), key=lambda k: (anchors[k][0], anchors[k][1], k)):
        (px, py), (w, h) = anchors[i], sizes[i]
        first = None
        radius = gap
        while radius <= reach and not placed[i]:
            for angle in _ANGLES:
                cx = px + math.cos(angle) * (radius + w / 2)
                cy = py + math.sin(angle) * (radius + h / 2)
                box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                if first is None:
                    first = box
                inside = box[0] >= x0 and box[1] >= y0 and box[2] <= x1 and box[3] <= y1
                if inside and not any(boxes_intersect(box, o, pad) for o in (*taken, *obstacles)):
                    boxes[i], placed[i] = box, True
                    taken.append(box)
                    break
            radius += step
        if not placed[i]:
            boxes[i] = first
    return boxes, placed


def any_overlap(boxes: np.ndarray) -> bool:
    """Whether any two of the ``(n, 4)`` boxes intersect (the property the layout guarantees)."""
    return any(
        boxes_intersect(boxes[i], boxes[j])
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
    )
