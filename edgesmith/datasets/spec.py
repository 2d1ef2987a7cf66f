"""Parse data specs: ``NAME``, ``npz:PATH``, ``folder:PATH``, each with ``?key=value&...``."""

from __future__ import annotations

import dataclasses

from edgesmith.errors import EdgesmithError

NAMED = ("digits", "cifar10", "mnist", "fashion_mnist", "synthetic")
PREFIXED = ("npz", "folder")
# Options every spec takes, plus those of single sources.
COMMON_OPTIONS = ("train", "eval")
SOURCE_OPTIONS = {
    "synthetic": ("classes", "shape", "n", "seed"),
    "folder": ("size", "split", "seed", "grayscale"),
}

SPEC_HELP = """\
data specs:
  digits              scikit-learn's 8x8 handwritten digits, embedded (offline default)
  cifar10, mnist, fashion_mnist
                      $EDGESMITH_DATA_DIR/<name>.npz if present, else downloaded once
  npz:PATH            arrays x_train, y_train, x_test, y_test (optional: labels)
  folder:PATH         one sub-folder of images per class (train/ and test/ inside: used as the
                      split; else 20% held out); ?size=HxW resizes
  synthetic           learnable stripes for tests; ?classes=4&shape=16x16x3&n=512
  any spec + ?train=N&eval=M uses the first N training and M eval images"""


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: source kind, optional path, and ``key=value`` options."""

    text: str
    kind: str
    path: str | None
    options: dict[str, str]

    def int_option(self, key: str, default: int | None = None) -> int | None:
        """An option as a positive int (or the default when absent).

        Raises:
            EdgesmithError: when the value is not a whole number >= 1.
        """
        if key not in self.options:
            return default
        value = self.options[key]
        if not value.isdigit() or int(value) < 1:
            raise EdgesmithError(
                f"data spec {self.text!r}: {key} must be a whole number >= 1. Received: {value!r}"
            )
        return int(value)

    def shape_option(self, key: str, default: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """An option like ``32x32`` or ``16x16x3`` as a tuple of ints.

        Raises:
            EdgesmithError: for anything but positive integers joined by ``x``.
        """
        if key not in self.options:
            return default
        parts = self.options[key].lower().split("x")
        if not all(p.isdigit() and int(p) > 0 for p in parts):
            raise EdgesmithError(
                f"data spec {self.text!r}: {key} must look like 32x32 or 32x32x3. "
                f"Received: {self.options[key]!r}"
            )
        return tuple(int(p) for p in parts)


def parse_spec(text: str) -> DataSpec:
    """Split a spec string into kind, path and options.

    Raises:
        EdgesmithError: for an unknown source, a prefix without a path, or an unknown option.
    """
    if not isinstance(text, str) or not text.strip():
        raise EdgesmithError(f"a data spec is needed (for example 'digits').\n{SPEC_HELP}")
    text = text.strip()
    body, _, query = text.partition("?")
    kind, sep, path = body.partition(":")
    if sep and kind not in PREFIXED:
        raise EdgesmithError(
            f"unknown data source {kind!r} in {text!r}: prefixes are {', '.join(PREFIXED)}"
        )
    if not sep and kind not in NAMED:
        raise EdgesmithError(
            f"unknown dataset {kind!r}: expected one of {', '.join(NAMED)}, npz:PATH or folder:PATH"
        )
    if sep and not path:
        raise EdgesmithError(f"data spec {text!r} needs a path after '{kind}:'")
    options: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        allowed = COMMON_OPTIONS + SOURCE_OPTIONS.get(kind, ())
        if not eq or key not in allowed:
            raise EdgesmithError(
                f"data spec {text!r}: unknown option {item!r}; {kind} takes "
                f"{', '.join(k + '=...' for k in allowed)}"
            )
        options[key] = value
    return DataSpec(text, kind, path or None, options)
