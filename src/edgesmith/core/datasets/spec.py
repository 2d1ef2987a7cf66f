"""Parse data specs: ``NAME``, ``npz:PATH``, ``folder:PATH``, each with ``?key=value&...``."""

from __future__ import annotations

import dataclasses

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.safe_files import short

NAMED = ("digits", "cifar10", "mnist", "fashion_mnist", "synthetic")
PREFIXED = ("npz", "folder")
# Options every spec takes, plus those of single sources.
COMMON_OPTIONS = ("train", "eval")
MAX_DIM = 4096
"""Largest image side (and channel count) ``synthetic?shape=`` may ask for."""
MAX_IMAGE_SIDE = 1024
"""Largest side ``folder:...?size=HxW`` may resize to: 1024x1024 RGB is 3 MiB an image."""
TRUE_WORDS = ("1", "true", "yes")
FALSE_WORDS = ("0", "false", "no")
SOURCE_OPTIONS = {
    "synthetic": ("classes", "shape", "n", "seed"),
    "folder": ("size", "split", "seed", "grayscale"),
    "cifar10": ("subset",),
}

SPEC_HELP = """\
data specs:
  digits              scikit-learn's 8x8 handwritten digits, embedded (offline default)
  cifar10, mnist, fashion_mnist
                      $EDGESMITH_DATA_DIR/<name>.npz if present, else downloaded once;
                      cifar10?subset=mlperf evaluates on MLPerf Tiny's 200 test images
  npz:PATH            arrays x_train, y_train, x_test, y_test (optional: labels)
  folder:PATH         one sub-folder of images per class (train/ and test/ inside: used as the
                      split; else 20% held out); ?size=HxW resizes (each side 1..1024)
  synthetic           learnable stripes for tests; ?classes=4&shape=16x16x3&n=512
  any spec + ?train=N&eval=M uses the first N training and M eval images"""


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: source kind, optional path, and ``key=value`` options."""

    text: str
    kind: str
    path: str | None
    options: dict[str, str]

    def int_option(self, key: str, default: int | None = None, *, minimum: int = 1) -> int | None:
        """An option as a whole number >= ``minimum`` (or the default when absent).

        Raises:
            EdgesmithError: when the value is not a plain ASCII whole number >= ``minimum``.
        """
        if key not in self.options:
            return default
        value = self.options[key]
        if not (value.isascii() and value.isdigit() and len(value) <= 12) or int(value) < minimum:
            raise EdgesmithError(
                f"data spec {self.text!r}: {key} must be a whole number >= {minimum}. "
                f"Received: {value!r}"
            )
        return int(value)

    def float_option(self, key: str, default: float, low: float, high: float) -> float:
        """An option as a number strictly between ``low`` and ``high``.

        Raises:
            EdgesmithError: for anything else (text, NaN, a value out of range).
        """
        if key not in self.options:
            return default
        value = self.options[key]
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not low < number < high:  # NaN fails this too
            raise EdgesmithError(
                f"data spec {self.text!r}: {key} must be a number in ({low:g}, {high:g}). "
                f"Received: {value!r}"
            )
        return number

    def bool_option(self, key: str, default: bool = False) -> bool:
        """An option as a switch: ``1``/``true``/``yes`` or ``0``/``false``/``no``.

        Raises:
            EdgesmithError: for any other word.
        """
        if key not in self.options:
            return default
        value = self.options[key].lower()
        if value not in TRUE_WORDS + FALSE_WORDS:
            raise EdgesmithError(
                f"data spec {self.text!r}: {key} must be one of "
                f"{', '.join(TRUE_WORDS + FALSE_WORDS)}. Received: {self.options[key]!r}"
            )
        return value in TRUE_WORDS

    def shape_option(self, key: str, default: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """An option like ``32x32`` or ``16x16x3`` as a tuple of ints.

        Raises:
            EdgesmithError: for anything but positive integers joined by ``x``.
        """
        if key not in self.options:
            return default
        parts = self.options[key].lower().split("x")
        largest = MAX_IMAGE_SIDE if key == "size" else MAX_DIM
        if not all(
            p.isascii() and p.isdigit() and len(p) <= 6 and 0 < int(p) <= largest for p in parts
        ):
            example = "32x32" if key == "size" else "32x32 or 32x32x3"
            raise EdgesmithError(
                f"data spec {short(self.text)}: {key} must look like {example}, each side "
                f"1..{largest}. Received: {short(self.options[key])}"
            )
        return tuple(int(p) for p in parts)

    def check_values(self) -> None:
        """Check every option's value now, before any data is read.

        Raises:
            EdgesmithError: naming the first malformed option.
        """
        for key in ("train", "eval", "classes", "n"):
            self.int_option(key)
        self.int_option("seed", minimum=0)
        for key in ("size", "shape"):
            self.shape_option(key, None)
        self.float_option("split", 0.2, 0.0, 1.0)
        self.bool_option("grayscale")
        if "subset" in self.options:
            from edgesmith.core.datasets.mlperf_tiny import SUBSETS

            if self.options["subset"] not in SUBSETS:
                raise EdgesmithError(
                    f"data spec {short(self.text)}: subset must be one of {', '.join(SUBSETS)}. "
                    f"Received: {short(self.options['subset'])}"
                )


def parse_spec(text: str) -> DataSpec:
    """Split a spec string into kind, path and options.

    Raises:
        EdgesmithError: for an unknown source, a prefix without a path, an unknown option, or
            an option whose value is malformed (checked here, before any data is read).
    """
    if not isinstance(text, str) or not text.strip():
        raise EdgesmithError(f"a data spec is needed (for example 'digits').\n{SPEC_HELP}")
    if "\0" in text:
        raise EdgesmithError(f"data spec {text!r} contains a NUL character")
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
    spec = DataSpec(text, kind, path or None, options)
    spec.check_values()
    return spec
