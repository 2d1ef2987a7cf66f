"""Per-layer channel counts: the one meaning of ``--widths`` (``LAYER=COUNT,...``).

``compress prune --structure channels --widths`` cuts a trained model down to these counts;
``train --widths`` builds a zoo ResNet at them from scratch. Both name the same layers (the
convolution that leads each group of channels tied together by a residual add), so a width
chosen on one side means the same network on the other.
"""

from __future__ import annotations

from edgesmith.core.errors import EdgesmithError

MAX_CHANNELS = 4096
"""More filters than any edge CNN's layer has: a larger count is a typo, not a network."""


def parse_widths(text: str) -> dict[str, int]:
    """``"conv2d=8,conv2d_3=24"`` -> ``{"conv2d": 8, "conv2d_3": 24}`` (the CLI's ``--widths``).

    Raises:
        EdgesmithError: for an item that is not ``LAYER=COUNT`` with a whole-number count.
    """
    widths: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, count = item.partition("=")
        count = count.strip()
        if not sep or not name.strip() or not (count.isascii() and count.isdigit()):
            raise EdgesmithError(
                f"widths must be LAYER=COUNT items separated by commas (e.g. conv2d=8,conv2d_3=24)."
                f" Received: {item!r}"
            )
        if name.strip() in widths:
            raise EdgesmithError(f"widths names {name.strip()!r} twice. Received: {text!r}")
        widths[name.strip()] = int(count)
    if not widths:
        raise EdgesmithError(f"widths names no group. Received: {text!r}")
    return widths


def check_widths(widths: object) -> dict[str, int]:
    """A ``{layer: count}`` map from text or a mapping, every count a whole number >= 1.

    Raises:
        EdgesmithError: naming the item that is not a layer name with a whole count >= 1.
    """
    if isinstance(widths, str):
        widths = parse_widths(widths)
    if not isinstance(widths, dict) or not widths:
        raise EdgesmithError(f"widths must map layer names to channel counts. Received: {widths!r}")
    for name, count in widths.items():
        if not isinstance(name, str) or isinstance(count, bool) or not isinstance(count, int):
            raise EdgesmithError(
                f"widths must map layer names to whole channel counts. Received: {name!r}: "
                f"{count!r}"
            )
        if not 1 <= count <= MAX_CHANNELS:
            raise EdgesmithError(
                f"widths[{name!r}] must be 1 to {MAX_CHANNELS} channels. Received: {count}"
            )
    return dict(widths)
