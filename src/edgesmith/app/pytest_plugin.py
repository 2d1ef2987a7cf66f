"""edgesmith's pytest plugin: latency and accuracy gates as ordinary tests (device CI).

Registered through the ``pytest11`` entry point, so installing edgesmith is enough: no conftest
to copy. A test asks for the ``edgesmith_bench`` fixture and calls it with a model file::

    def test_model_is_not_slower(edgesmith_bench):
        edgesmith_bench("build/model.tflite", data="cifar10")

``pytest --edgesmith-baseline DIR --edgesmith-update`` benches the file and records the baseline
(``DIR/<name>.json`` and its model store, as ``edgesmith bench --json-out`` writes them);
``pytest --edgesmith-baseline DIR`` gates the file against it with the same gate as
``edgesmith check`` (``assert_no_regression``): a failure shows the verdict's text, and the
session ends with a table of every verdict. The options are the gate's own settings
(:class:`~edgesmith.runtime.regression.CheckOptions` and the timing plan) with an
``--edgesmith-`` prefix, built from those config fields, so defaults, help and ranges have one
source; a bad value is a pytest usage error naming the option.

Importing this module is cheap: the runtime is imported when the fixture is first used.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from edgesmith.core.cli_args import add_settings

PREFIX = "edgesmith_"
# The gate's settings the plugin does not offer: the timing plan is given field by field, and
# the data set is an argument of each call (one test suite gates models of different data).
_SKIP_CHECK = ("timing", "data")
_SUMMARY = pytest.StashKey[list]()


class _PrefixedGroup:
    """Adapts pytest's option group to :func:`add_settings`: ``--x`` becomes ``--edgesmith-x``.

    ``add_settings`` builds each flag from its config field (type, range, help, default shown);
    routing it through this adapter keeps that one source instead of restating the options.
    """

    def __init__(self, group: Any) -> None:
        self._group = group
        self._actions: list[argparse.Namespace] = []

    def add_argument(self, flag: str, **kwargs: Any) -> None:
        dest = PREFIX + kwargs.pop("dest")
        self._group.addoption("--edgesmith-" + flag[2:], dest=dest, **kwargs)
        self._actions.append(argparse.Namespace(dest=dest))


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the baseline options and the gate's settings (``--edgesmith-max-slowdown`` ...)."""
    from edgesmith.runtime.regression import CHECK_TIMING, CheckOptions
    from edgesmith.runtime.timing import TimingPlan

    group = parser.getgroup("edgesmith", "edgesmith latency and accuracy gates")
    group.addoption(
        "--edgesmith-baseline",
        dest=PREFIX + "baseline",
        metavar="DIR",
        default=None,
        help="folder of the baselines edgesmith_bench compares with (one JSON per test, and "
        "its model store); without it, tests using edgesmith_bench are skipped",
    )
    group.addoption(
        "--edgesmith-update",
        dest=PREFIX + "update",
        action="store_true",
        default=False,
        help="bench each model and record it as the baseline instead of comparing",
    )
    adapter = _PrefixedGroup(group)
    add_settings(adapter, CheckOptions, skip=_SKIP_CHECK)  # type: ignore[arg-type]
    add_settings(adapter, TimingPlan, defaults=CHECK_TIMING)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    """Check the baseline folder once, up front, and start the session's table."""
    config.stash[_SUMMARY] = []
    folder = config.getoption(PREFIX + "baseline")
    if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
        raise pytest.UsageError(
            f"--edgesmith-baseline must be a folder. Received: {folder!r} (a file)"
        )
    if config.getoption(PREFIX + "update") and folder is None:
        raise pytest.UsageError("--edgesmith-update needs --edgesmith-baseline DIR to write to")


@dataclasses.dataclass(frozen=True)
class GateRecord:
    """One row of the session's table: a test, its model, and what the gate said."""

    test: str
    model: str
    outcome: str
    latency: str
    accuracy: str


def _settings(config: pytest.Config, cls: type) -> dict[str, Any]:
    """The given (not None) ``--edgesmith-*`` values of ``cls``'s settings, by field name."""
    from edgesmith.core.config import settings_of

    values = {}
    for name in settings_of(cls):
        value = config.getoption(PREFIX + name, default=None)
        if value is not None:
            values[name] = value
    return values


def baseline_name(nodeid: str) -> str:
    """A file name for a test's baseline: its node id with anything unsafe turned into ``_``.

    Node ids are stable across runs and unique within a session, so one test always meets
    its own baseline (a test gating several models passes ``name=`` per model).
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_.") or "baseline"


class EdgesmithBench:
    """The ``edgesmith_bench`` fixture's value: call it with a model file to record or gate it."""

    def __init__(self, request: pytest.FixtureRequest, folder: Path) -> None:
        self._request = request
        self._folder = folder

    def __call__(self, model: str | Path, *, data: str | None = None, name: str | None = None):
        """Record ``model``'s baseline (``--edgesmith-update``) or gate it against it.

        Args:
            model: a ``.tflite``/``.onnx`` file or an exported artifact folder.
            data: data spec for accuracy (recorded in the baseline, then measured on it); None
                gates latency only.
            name: the baseline's file name (default: from the test's node id).

        Returns:
            The bench run when recording, else the gate's verdict.
        """
        from edgesmith.core.errors import EdgesmithError
        from edgesmith.runtime.bench import BenchConfig, benchmark, save_baseline
        from edgesmith.runtime.regression import CHECK_TIMING, CheckOptions, check
        from edgesmith.runtime.timing import TimingPlan

        config = self._request.config
        path = self._folder / f"{baseline_name(name or self._request.node.nodeid)}.json"
        plan = CHECK_TIMING.replace(**_settings(config, TimingPlan))
        table: list[GateRecord] = config.stash[_SUMMARY]
        test = self._request.node.nodeid
        try:
            if config.getoption(PREFIX + "update"):
                self._folder.mkdir(parents=True, exist_ok=True)
                provider = config.getoption(PREFIX + "provider", default=None)
                bench_config = BenchConfig(timing=plan)
                if provider is not None:
                    bench_config = bench_config.replace(provider=provider)
                run = benchmark([model], data=data, config=bench_config)
                save_baseline(run.document, path)
                (result,) = run.document.results
                accuracy = "-" if result.accuracy is None else f"{100 * result.accuracy:.2f}%"
                table.append(
                    GateRecord(
                        test, str(model), "recorded", f"p50 {result.latency.p50:.3f} ms", accuracy
                    )
                )
                return run
            if not path.is_file():
                table.append(GateRecord(test, str(model), "no baseline", "-", "-"))
                pytest.fail(
                    f"no baseline {path} for {model}: record it with --edgesmith-update",
                    pytrace=False,
                )
            given = _settings(config, CheckOptions)
            given["skip_accuracy"] = data is None or bool(given.get("skip_accuracy"))
            options = CheckOptions(timing=plan, data=data).replace(**given)
            (verdict,) = check([model], path, options)
        except EdgesmithError as exc:
            table.append(GateRecord(test, str(model), "error", "-", "-"))
            pytest.fail(f"edgesmith: error: {exc}", pytrace=False)
        table.append(_record(test, str(model), verdict))
        if not verdict.ok:
            pytest.fail(verdict.text(), pytrace=False)
        return verdict


def _record(test: str, model: str, verdict: Any) -> GateRecord:
    if verdict.instructions is not None:
        latency = f"instr x{verdict.instructions.ratio:.4f} {verdict.latency_status}"
    elif verdict.latency is not None:
        e = verdict.latency
        latency = f"x{e.ratio:.3f} [{e.low:.3f}-{e.high:.3f}] {verdict.latency_status}"
    else:
        latency = str(verdict.latency_status)
    if verdict.accuracy_percent is not None and verdict.baseline_accuracy_percent is not None:
        accuracy = (
            f"{verdict.accuracy_percent:.2f}% vs {verdict.baseline_accuracy_percent:.2f}% "
            f"{verdict.accuracy_status}"
        )
    else:
        accuracy = str(verdict.accuracy_status)
    return GateRecord(test, model, "PASS" if verdict.ok else "FAIL", latency, accuracy)


@pytest.fixture
def edgesmith_bench(request: pytest.FixtureRequest) -> EdgesmithBench:
    """Bench a model file and gate it against the stored baseline (see the module docstring).

    Skipped without ``--edgesmith-baseline``, so a suite that holds latency gates still runs
    where no baselines are kept (a laptop), and gates only in the job that names them.
    """
    folder = request.config.getoption(PREFIX + "baseline")
    if folder is None:
        pytest.skip("edgesmith gate: no --edgesmith-baseline DIR given")
    return EdgesmithBench(request, Path(folder))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print one row per gated (or recorded) model at the end of the session."""
    rows: list[GateRecord] = config.stash.get(_SUMMARY, [])
    if not rows:
        return
    header = GateRecord("test", "model", "result", "latency (ratio [95% CI])", "accuracy")
    table = [header, *rows]
    widths = [max(len(getattr(r, f.name)) for r in table) for f in dataclasses.fields(header)]
    terminalreporter.write_sep("=", "edgesmith gates")
    for row in table:
        cells = [getattr(row, f.name) for f in dataclasses.fields(row)]
        terminalreporter.write_line(
            "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        )


__all__ = ["EdgesmithBench", "GateRecord", "baseline_name", "edgesmith_bench"]
