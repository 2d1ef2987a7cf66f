"""``build()``: train -> compress -> export -> bench -> choose -> bundle, for one device profile.

Everything that can be wrong with the input (profile, recipe, data spec, source artifact,
timing settings, output directory) is checked before TensorFlow loads. Finished work under
``OUT/work`` is reused by content key; the bench is always measured again (latency is a
measurement of now, not an artifact). ``OUT`` is edgesmith's folder (``folders.py``): a build
replaces only what an earlier build wrote there, and holds ``OUT.lock`` while it runs.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from edgesmith.app.build.candidates import (
    Exported,
    compress_candidate,
    export_candidate,
    train_source,
)
from edgesmith.app.build.folders import (
    check_build_dir,
    claim_build_dir,
    fresh_stage,
    publish_dir,
    write_text,
)
from edgesmith.app.build.options import DEFAULT_TIMING, BuildOptions
from edgesmith.app.build.recipe import BuildRecipe, load_recipe
from edgesmith.app.build.select import candidate_row, choose, nothing_fits, table
from edgesmith.core.artifacts import Artifact, read_artifact
from edgesmith.core.errors import CheckFailed, EdgesmithError
from edgesmith.core.outputs import OutputLock
from edgesmith.core.profiles import DeviceProfile, load_profile
from edgesmith.core.progress import Reporter, stderr_reporter
from edgesmith.runtime import BenchDocument
from edgesmith.runtime.timing import TimingPlan

LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


@dataclasses.dataclass
class BuildResult:
    """What a build found.

    Attributes:
        device: the profile's name.
        rows: every candidate file with its numbers and budget verdicts.
        chosen: the chosen row, or None when nothing met the budgets.
        bundle: the bundle directory, or None when nothing was chosen.
        document: the bench document the verdicts rest on (the device's with ``host``).
        seconds: wall time of the build.
    """

    device: str
    rows: list[dict]
    chosen: dict | None
    bundle: Path | None
    document: BenchDocument | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The ``candidates.json`` document (and ``--json`` output)."""
        return {
            "device": self.device,
            "chosen": None if self.chosen is None else self.chosen["name"],
            "bundle": None if self.bundle is None else str(self.bundle),
            "seconds": round(self.seconds, 1),
            "data": None if self.document is None else self.document.data,
            "host": None if self.document is None else self.document.host,
            "candidates": self.rows,
        }

    def table(self) -> str:
        """The candidates as a plain-text table, the chosen one marked with ``*``."""
        return table(self.rows, self.chosen)


def emulated_targets(profile: DeviceProfile, asked: bool) -> tuple[str, ...]:
    """The emulated CPUs the exports are checked on: the profile's ``emulate``, when asked.

    Raises:
        EdgesmithError: when asked for a profile without an ``emulate`` key, or when its CPU
            cannot be emulated here (naming what to install), before any work.
    """
    if not asked:
        return ()
    if profile.emulate is None:
        raise EdgesmithError(
            f"--check-on-emulated needs an emulate key in the device profile, and "
            f"{profile.name} has none (arm64-linux has emulate: aarch64; add one to a copy of "
            "the YAML, or drop the flag)"
        )
    from edgesmith.runtime import check_emulators

    check_emulators([profile.emulate], flag="--check-on-emulated")
    return (profile.emulate,)


def build(
    device: str | Path | DeviceProfile,
    data: str,
    out: str | Path,
    options: BuildOptions | None = None,
    *,
    timing: TimingPlan = DEFAULT_TIMING,
    report: Reporter | None = None,
    **settings: Any,
) -> BuildResult:
    """Build the best model for a device and write its bundle to ``OUT/bundle``.

    Args:
        device: a shipped profile name, a profile file, or a loaded profile.
        data: data spec to train on and to measure accuracy with.
        out: the build directory (work under ``out/work``, the bundle in ``out/bundle``):
            new, empty, or an earlier build's; re-using the same ``out`` reuses the finished
            work. Nothing in it that edgesmith did not write is ever replaced or deleted.
        options: the build's settings (:class:`~edgesmith.app.build.options.BuildOptions`:
            recipe, model, epochs, source, host, remote settings, allow_delegate).
        timing: bench timing minimums per model.
        report: progress lines (stderr by default).
        **settings: :class:`BuildOptions` fields, over ``options`` (``recipe=``, ``host=`` ...).

    Returns:
        The :class:`BuildResult`; ``OUT/candidates.json`` holds the same table.

    Raises:
        EdgesmithError: for bad input (exit 2), before any heavy work: among it an ``out``
            holding files edgesmith did not write, or one another build is writing.
        CheckFailed: when no candidate meets every budget (exit 1); the message names the
            unmet budgets and the closest candidate; ``exc.result`` holds the BuildResult.
    """
    started = time.perf_counter()
    report = report or stderr_reporter()
    opts = (options or BuildOptions()).replace(**settings)
    recipe, source, host, allow_delegate = opts.recipe, opts.source, opts.host, opts.allow_delegate
    remote_dir, ssh_options, remote_timeout = opts.remote_dir, opts.ssh_options, opts.remote_timeout
    profile = device if isinstance(device, DeviceProfile) else load_profile(device)
    profile.runtime_options(allow_delegate=allow_delegate)  # a delegate needs consent, first
    check_on = emulated_targets(profile, opts.check_on_emulated)
    spec = recipe if isinstance(recipe, BuildRecipe) else load_recipe(recipe)
    from edgesmith.core.datasets import parse_spec

    parse_spec(data)
    train_config = spec.train_config(data=data, model=opts.model, epochs=opts.epochs)
    start = read_artifact(source) if source is not None else None
    if start is not None and start.format != "keras":
        raise EdgesmithError(
            f"--from {start.path} holds a {start.format} model; a build starts from a Keras "
            "artifact (edgesmith train or import)"
        )
    out = Path(out)
    remote = None
    if host is not None:
        from edgesmith.app.build.remote import check_remote_settings

        remote = check_remote_settings(host, remote_dir, ssh_options, remote_timeout)
    with OutputLock(out):  # a second build into this folder exits 2 at once
        check_build_dir(out)
        if remote is not None:
            from edgesmith.app.build.remote import check_reachable

            check_reachable(remote, tuple(ssh_options))
        work = claim_build_dir(out)
        report(
            f"build for {profile.name} ({profile.runtime}/{profile.provider}, formats "
            f"{', '.join(profile.formats)}) on {data}: {len(spec.candidates)} candidate(s) "
            f"-> {out}"
        )
        if start is None:
            start = train_source(train_config, work, report)
        else:
            report(f"[train] starting from {start.path} (accuracy {_acc(start)}); no training")
        exported: list[Exported] = []
        for candidate in spec.candidates:
            artifact = compress_candidate(candidate, start, work, report)
            exported += export_candidate(
                candidate, artifact, profile, work, report, check_on=check_on
            )
        measured = [e for e in exported if e.artifact is not None]
        if not measured:
            rows = [candidate_row(e, None, profile.budgets.to_dict()) for e in exported]
            _write_table(out, BuildResult(profile.name, rows, None, None, None, 0.0))
            raise nothing_fits(rows, profile.name)
        bench_dir = work / "bench"
        stage = fresh_stage(bench_dir, "edgesmith build bench")
        try:
            if remote is not None:
                from edgesmith.app.build.remote import remote_bench

                document, _ = remote_bench(
                    remote,
                    measured,
                    data=data,
                    profile=profile,
                    plan=timing,
                    out=stage,
                    remote_edgesmith=opts.remote_edgesmith,
                    remote_dir=remote_dir,
                    options=tuple(ssh_options),
                    timeout=remote_timeout,
                    allow_delegate=allow_delegate,
                    report=report,
                )
            else:
                document = _bench_here(
                    measured, data, profile, timing, stage, report, allow_delegate=allow_delegate
                )
            publish_dir(stage, bench_dir)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)  # made by this run, just now
            raise
        plots = sorted((bench_dir / "plots").glob("*.png"))
        report_md = _read_text(bench_dir / "report.md")
        records = dict(zip((e.name for e in measured), document.results, strict=True))
        budgets = profile.budgets.to_dict()
        if document.emulation is not None:  # an emulator's latency is not the device's
            budgets["max_latency_ms"] = None  # (as bench --emulate: budgets not judged on it)
        rows = [candidate_row(e, records.get(e.name), budgets) for e in exported]
        chosen = choose(rows)
        result = BuildResult(profile.name, rows, chosen, None, document, 0.0)
        if chosen is None:
            result.seconds = time.perf_counter() - started
            _write_table(out, result)
            error = nothing_fits(rows, profile.name)
            error.result = result  # type: ignore[attr-defined]
            raise error
        from edgesmith.app.build.bundle import write_bundle

        artifact = next(e.artifact for e in measured if e.name == chosen["name"])
        result.seconds = time.perf_counter() - started
        result.bundle = out / "bundle"
        candidates_md = _write_table(out, result)
        write_bundle(
            result.bundle,
            artifact,
            chosen,
            profile=profile,
            data=data,
            document=document,
            report_md=report_md,
            plots=plots,
            candidates=result.to_dict(),
            candidates_md=candidates_md,
        )
        report(f"chose {chosen['name']}; bundle {result.bundle} ({result.seconds:.1f} s)")
        return result


def _bench_here(
    measured: list[Exported],
    data: str,
    profile: DeviceProfile,
    timing: TimingPlan,
    bench_dir: Path,
    report: Reporter,
    *,
    allow_delegate: bool = False,
) -> dict:
    """Bench every file on this machine with the command a device would run, in ``bench_dir``.

    ``bench_dir`` is a fresh staging folder; the report and plots are written into it.

    ``edgesmith bench`` runs in a fresh process, so its peak memory is the runtime's and the
    models' (the build's own process holds TensorFlow, a gigabyte the device never loads).
    """
    import subprocess
    import sys

    from edgesmith.app.build.remote import (
        bench_args,
        match_results,
        parse_bench_output,
        staged_name,
    )

    names = [staged_name(e) for e in measured]
    for name, exported in zip(names, measured, strict=True):
        (bench_dir / name).symlink_to(exported.artifact.path.resolve(), target_is_directory=True)
    (bench_dir / "device.json").write_text(json.dumps(profile.device_dict(), indent=2) + "\n")
    report(f"[bench] {len(measured)} file(s) on this machine, interleaved, in a fresh process")
    # Linux carries a process's peak RSS (getrusage's ru_maxrss) across fork + exec, so a bench
    # started straight from this TensorFlow-sized process would report our gigabyte as its own
    # peak. A small launcher in between forks the bench from a fresh, small process instead.
    command = [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "edgesmith"]
    command += bench_args(names, data, timing, allow_delegate=allow_delegate)
    result = subprocess.run(command, cwd=bench_dir, capture_output=True, text=True)
    if result.returncode not in (0, 1):  # 1: a model over a budget, which the build judges
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise EdgesmithError(
            f"edgesmith bench failed (exit {result.returncode}): "
            f"{lines[-1] if lines else 'no message'}"
        )
    document = parse_bench_output(result.stdout, len(measured), "here")
    return document.replace(results=match_results(document, measured, "here"))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return "# edgesmith bench\n\n(the device's report could not be fetched)\n"


def _write_table(out: Path, result: BuildResult) -> str:
    """Write ``OUT/candidates.json`` and ``OUT/candidates.md`` (each staged, then renamed)."""
    text = f"# edgesmith build: device {result.device}\n\n```\n{result.table()}\n```\n\n" + (
        f"Chosen: {result.chosen['name']}\n" if result.chosen else "Nothing met every budget.\n"
    )
    write_text(out / "candidates.json", json.dumps(result.to_dict(), indent=2) + "\n")
    write_text(out / "candidates.md", text)
    return text


def _acc(artifact: Artifact) -> str:
    value = artifact.metrics.accuracy
    return "-" if value is None else f"{value:.4f}"


__all__ = ["DEFAULT_TIMING", "BuildResult", "CheckFailed", "build"]
