"""A bench as ``edgesmith bench`` makes it, for the CLI and the API alike.

:func:`~edgesmith.runtime.bench.benchmark` measures files on this machine; a bench a user asks
for may also run on an emulated CPU, count instructions and be judged against a device profile's
budgets. :func:`run_bench` puts those together in one order, checking everything checkable
before any model loads, and :func:`write_bench_outputs` writes the files the run asked for, so
the CLI handler only parses and prints.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.outputs import record_written
from edgesmith.core.profiles import DeviceProfile
from edgesmith.core.progress import Reporter
from edgesmith.runtime.bench import BenchConfig, BenchRun
from edgesmith.runtime.bench_schema import BenchDocument
from edgesmith.runtime.emulation import EMULATED_TIMING
from edgesmith.runtime.timing import TimingPlan

NOT_WITH_EMULATE = (
    "does not apply with --emulate (an emulated latency is the emulator's, not the device's)"
)


def bench_config(
    given: dict[str, Any],
    timing: dict[str, Any],
    profile: DeviceProfile | None = None,
    *,
    allow_delegate: bool = False,
) -> BenchConfig:
    """The run's settings: the defaults, then the device profile's, then those ``given``.

    Args:
        given: bench settings set by the user (flags), by field name.
        timing: timing settings set by the user; an emulated bench without any is timed
            briefly (:data:`EMULATED_TIMING`).
        profile: the device profile, whose provider, threads and affinity come before ``given``.
        allow_delegate: load the delegate library the profile names (native code).
    """
    values: dict = {}
    if profile is not None:
        values.update(profile.runtime_options(allow_delegate=allow_delegate))
        if profile.affinity:
            values["affinity"] = ",".join(str(core) for core in profile.affinity)
    brief = given.get("emulate") is not None and not timing
    values["timing"] = (EMULATED_TIMING if brief else TimingPlan()).replace(**timing)
    return BenchConfig.from_dict({**values, **given})


def check_bench(
    paths: Sequence[str], config: BenchConfig, *, data: str | None, profile: DeviceProfile | None
) -> None:
    """Refuse, before any model loads, what this bench cannot do.

    Raises:
        EdgesmithError: for a file the profile's runtime cannot run, a profile's budgets judged
            on an emulated latency, instructions counted under an emulator (the counts would be
            the host's), a missing valgrind, or a data spec that does not parse.
    """
    if profile is not None:
        from edgesmith.runtime.budgets import check_profile_formats

        check_profile_formats(paths, profile)
        if config.emulate is not None:
            raise EdgesmithError(f"--device {NOT_WITH_EMULATE}")
    if config.emulate is not None and config.measure == "instructions":
        raise EdgesmithError(
            "--measure instructions counts on this machine with valgrind; drop --emulate, or "
            "--measure latency for an emulated run"
        )
    if config.measure == "instructions":
        from edgesmith.runtime.instructions import check_countable

        check_countable(config)
    if data is not None:
        from edgesmith.core.datasets import parse_spec

        parse_spec(data)  # a typo fails now, not after the models load


def run_bench(
    paths: Sequence[str],
    *,
    data: str | None = None,
    config: BenchConfig | None = None,
    profile: DeviceProfile | None = None,
    report: Reporter | None = None,
) -> BenchRun:
    """Bench ``paths`` here or on ``config.emulate``, count instructions if asked, judge budgets.

    Args:
        paths: .tflite/.onnx files or artifact directories.
        data: the data spec for inputs and accuracy.
        config: the bench settings (a profile's are merged in by the caller).
        profile: a device profile whose budgets judge the results.
        report: progress lines.

    Returns:
        The run; an emulated run has no per-round samples (``rounds`` is empty).

    Raises:
        EdgesmithError: for anything :func:`check_bench` refuses, and the runners' own errors.
    """
    config = config or BenchConfig()
    report = report or (lambda line: None)
    check_bench(paths, config, data=data, profile=profile)
    if config.emulate is not None:
        from edgesmith.runtime.emulation import emulated_benchmark

        document = emulated_benchmark(
            paths, target=config.emulate, data=data, config=config, report=report
        )
        run = BenchRun(document, [])
    else:
        from edgesmith.runtime.bench import benchmark

        run = benchmark(paths, data=data, config=config, report=report)
    if config.measure == "instructions":
        run = BenchRun(_with_instructions(run.document, config, data, report), run.rounds)
    if profile is not None:
        from edgesmith.runtime.budgets import judge

        run = BenchRun(judge(run.document, profile), run.rounds)
    return run


def _with_instructions(
    document: BenchDocument, config: BenchConfig, data: str | None, report: Reporter
) -> BenchDocument:
    """The document with each result's instructions per inference counted (valgrind)."""
    from edgesmith.runtime.instructions import count_instructions

    counts = count_instructions(
        [result.model_file for result in document.results], config, data=data, report=report
    )
    results = tuple(
        dataclasses.replace(result, instructions=counted)
        for result, counted in zip(document.results, counts, strict=True)
    )
    return document.replace(results=results)


def claim_outputs(
    *,
    json_out: str | None = None,
    markdown_out: str | None = None,
    plots_dir: str | None = None,
    overwrite: bool = False,
    emulate: str | None = None,
) -> None:
    """Refuse, before any work, an output this run may not write or cannot make.

    A file edgesmith did not write, or a link, is replaced only with ``overwrite`` (never a
    folder); files edgesmith wrote and nobody changed since are replaced without it. An
    emulated run makes no plots: its latencies are the emulator's.

    Raises:
        EdgesmithError: naming the flag and the first path that is not ours to replace.
    """
    from edgesmith.core.outputs import check_files_writable

    if plots_dir and emulate is not None:
        raise EdgesmithError(f"--plots {NOT_WITH_EMULATE}")
    for flag, value in (("--json-out", json_out), ("--report", markdown_out)):
        if value:
            check_files_writable([Path(value)], overwrite=overwrite, flag=flag)
    if plots_dir:
        from edgesmith.runtime.plots import PLOT_FILES

        plots = [Path(plots_dir) / name for name in PLOT_FILES]
        check_files_writable(plots, overwrite=overwrite, flag="--plots")


def write_json_file(records: object, path: str | Path) -> None:
    """Write JSON atomically (temp file, then rename) and record it as edgesmith's.

    Raises:
        EdgesmithError: when the file cannot be written.
    """
    _write_text(Path(path), json.dumps(records, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        record_written(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written .tmp behind
        raise EdgesmithError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_bench_outputs(
    run: BenchRun,
    *,
    json_out: str | None = None,
    markdown_out: str | None = None,
    plots_dir: str | None = None,
    report: Reporter | None = None,
) -> list[Path]:
    """Write the baseline (document + model store), the plots and the Markdown report asked for.

    Plots need matplotlib and per-round samples (an emulated run has none): without either a
    note says why they were skipped, and the rest is still written.

    Returns:
        The plot files written.

    Raises:
        EdgesmithError: when a file cannot be written.
    """
    import sys

    report = report or (lambda line: None)
    plots: list[Path] = []
    if plots_dir:
        from edgesmith.runtime.plots import INSTALL_HINT, plots_available, write_plots

        if not run.rounds:  # an emulated run: its latencies are the emulator's, not plotted
            print("edgesmith: note: plots skipped: an emulated run has no rounds", file=sys.stderr)
        elif plots_available():
            plots = write_plots(run.document, run.rounds, plots_dir)
            report(f"plots: {', '.join(str(p) for p in plots)}")
        else:
            print(f"edgesmith: note: plots skipped: {INSTALL_HINT}", file=sys.stderr)
    if json_out:
        from edgesmith.runtime.bench import save_baseline

        save_baseline(run.document, json_out)
    if markdown_out:
        from edgesmith.runtime.report import markdown

        path = Path(markdown_out)
        _write_text(path, markdown(run.document, plots, base=path.parent))
    return plots


def bench_summary(document: BenchDocument, profile: DeviceProfile | None = None) -> str:
    """The table the CLI prints, with the emulator's label, counts and budget verdicts."""
    from edgesmith.runtime.report import terminal_table

    lines = [terminal_table(document)]
    if document.emulation is not None:
        lines.append(f"{document.emulation.emulator}: {document.emulation.note}")
    for result in document.results:
        if result.instructions is not None:
            lines.append(
                f"{result.path}: {result.instructions.per_inference:,.0f} instructions per "
                f"inference ({result.instructions.tool}; counted, not timed)"
            )
    if profile is not None:
        from edgesmith.runtime.budgets import describe_all

        lines.append(describe_all(document, profile.name))
    return "\n".join(lines)
