"""Making the candidates: train (or take a trained artifact), compress, export; reuse what is done.

Every step lands in a content-addressed directory under ``OUT/work`` (see ``cache.py``): the
training run in ``work/train-<key>/model``, each compress step in
``work/compress/<technique>-<key>/1-<technique>`` (written by the compress stage's own recipe
runner), each candidate's exported files in ``work/export/<candidate>-<key>/<format>``.
Candidates whose steps begin alike share those steps' directories. The stages import
TensorFlow; this module imports it only inside the functions that run them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from edgesmith.app.build import cache
from edgesmith.app.build.recipe import CandidateSpec
from edgesmith.core.artifacts import Artifact, read_artifact
from edgesmith.core.errors import CheckFailed
from edgesmith.core.outputs import record_written
from edgesmith.core.profiles import FIRMWARE_TARGETS, DeviceProfile
from edgesmith.core.progress import Reporter

EXPORT_SUMMARY = "export.json"


@dataclasses.dataclass
class Exported:
    """One exported file of one candidate, or why the format could not be made.

    Attributes:
        candidate: the candidate's name.
        format: the export format name.
        artifact: the published export artifact, or None when a check failed.
        failure: the failed export check's message (parity, target op set), or None.
        note: something the user should know about how the file was made, or None.
    """

    candidate: str
    format: str
    artifact: Artifact | None
    failure: str | None = None
    note: str | None = None

    @property
    def name(self) -> str:
        """``candidate/format``: the row's name in the tables."""
        return f"{self.candidate}/{self.format}"


def train_source(config, work: Path, report: Reporter) -> Artifact:
    """Train the recipe's model, or reuse the finished run with the same settings.

    Args:
        config: the resolved ``TrainConfig``.
        work: the build's work directory.
        report: progress lines.
    """
    settings = config.to_dict()
    key = cache.step_key("train", settings, None)
    directory = cache.step_dir(work, "train", key)
    done = cache.finished(directory, key, directory / "model")
    if done is not None:
        report(f"[train] reusing {directory} (accuracy {_accuracy(done)})")
        return done
    cache.clear(directory)
    directory.mkdir(parents=True)
    report(f"[train] {config.model} on {config.data}, {config.epochs} epochs -> {directory}")
    from edgesmith.train import train

    artifact = train(config, directory / "model", report=_indented(report))
    cache.write_key(directory, "train", key, settings, None)
    report(f"[train] done: accuracy {_accuracy(artifact)}")
    return artifact


def compress_candidate(
    spec: CandidateSpec, source: Artifact, work: Path, report: Reporter
) -> Artifact:
    """Run a candidate's compress steps one by one, each reused when its key is unchanged.

    Each step runs through ``edgesmith.compress.run_recipe`` as a one-step recipe, so the build
    and ``edgesmith compress recipe`` do exactly the same work per step.
    """
    current = source
    steps = spec.parsed()
    for index, ((technique, config), raw) in enumerate(zip(steps, spec.steps, strict=True), 1):
        settings = config.to_dict()
        key = cache.step_key(f"compress:{technique}", settings, current.id)
        directory = cache.step_dir(work / "compress", technique, key)
        artifact_dir = directory / f"1-{technique}"
        where = f"[{spec.name}] step {index}/{len(steps)} {technique}"
        done = cache.finished(directory, key, artifact_dir)
        if done is not None:
            report(f"{where}: reusing {directory} (accuracy {_accuracy(done)})")
            current = done
            continue
        cache.clear(directory)
        report(f"{where}: {_settings_text(raw)} -> {directory}")
        from edgesmith.compress import run_recipe

        (current,) = run_recipe(current, {"steps": [raw]}, directory, report=_indented(report))
        cache.write_key(directory, f"compress:{technique}", key, settings, source_id(current))
        report(f"{where}: done: accuracy {_accuracy(current)}")
    return current


def source_id(artifact: Artifact) -> str | None:
    """The artifact's parent id (what the step started from), for the key record."""
    return artifact.parent


def export_plan(profile: DeviceProfile, source: Artifact) -> tuple[list[str], dict, str | None]:
    """The formats and export options a profile asks for, adapted to the source.

    A QAT model exports only to the formats that keep its learned int8 ranges, and cannot take
    the raw-input fold (its first quantiser learned normalised inputs); a microcontroller gets
    the C array and, where possible, the raw-input fold so it feeds camera pixels as they come.

    Returns:
        ``(formats, options, note)``; ``formats`` may be empty when none fits the source.
    """
    from edgesmith.export import read_source

    qat = read_source(source.path).qat
    formats = list(profile.formats)
    note = None
    if qat:
        from edgesmith.export import QAT_FORMATS

        formats = [f for f in formats if f in QAT_FORMATS]
    options: dict[str, Any] = {"target": profile.target}
    if profile.vela:
        options["vela"] = dict(profile.vela)  # Ethos-U: Vela's system config, memory, clock
    if profile.target in ("tflm", *FIRMWARE_TARGETS) or (profile.target or "").startswith(
        "ethos-u"
    ):
        options["c_array"] = True
        if qat:
            note = "QAT model: no raw-input fold; the device normalises pixels before feeding"
        else:
            options["raw_input"] = True
    return formats, options, note


def export_candidate(
    spec: CandidateSpec,
    source: Artifact,
    profile: DeviceProfile,
    work: Path,
    report: Reporter,
    *,
    check_on: tuple[str, ...] = (),
) -> list[Exported]:
    """Export a candidate to the profile's formats; reuse a finished export with the same key.

    A format that fails its parity or target check is recorded with the reason (a row that
    cannot be chosen), not raised: the other formats and candidates still compete.
    ``check_on`` names emulated CPUs the parity check also runs on (``export --check-on``).
    """
    formats, options, note = export_plan(profile, source)
    if check_on:
        options["check_on"] = tuple(check_on)
    where = f"[{spec.name}] export"
    if not formats:
        report(f"{where}: no format of {profile.name} can hold this model; skipped")
        return [
            Exported(spec.name, f, None, failure="a QAT model cannot be exported to this format")
            for f in profile.formats
        ]
    from edgesmith.export.options import ExportOptions

    settings = {"formats": formats, "options": ExportOptions.from_dict(options).to_dict()}
    key = cache.step_key("export", settings, source.id)
    directory = cache.step_dir(work / "export", spec.name, key)
    summary = _read_summary(directory, key)
    if summary is not None:
        report(f"{where}: reusing {directory}")
        return [
            Exported(spec.name, f, _read(directory / f) if ok else None, failure, note)
            for f, ok, failure in summary
        ]
    cache.clear(directory)
    directory.mkdir(parents=True)
    report(f"{where}: {', '.join(formats)} (target {profile.target or 'none'}) -> {directory}")
    from edgesmith.export import export_formats

    results = export_formats(source.path, formats, directory, report=_indented(report), **options)
    rows = [Exported(spec.name, r.name, r.artifact, r.failure, note) for r in results]
    record = [
        {"format": r.format, "published": r.artifact is not None, "failure": r.failure}
        for r in rows
    ]
    cache.write_key(directory, "export", key, settings, source.id)
    (directory / EXPORT_SUMMARY).write_text(json.dumps(record, indent=2) + "\n")
    record_written(directory / EXPORT_SUMMARY)  # so that a later run may clear the step
    return rows


def _read_summary(directory: Path, key: str) -> list[tuple[str, bool, str | None]] | None:
    """A finished export's per-format outcomes, or None when it must be redone."""
    if cache.stored_key(directory) != key:
        return None
    try:
        record = json.loads((directory / EXPORT_SUMMARY).read_text(encoding="utf-8"))
        outcomes = [(r["format"], bool(r["published"]), r.get("failure")) for r in record]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for fmt, published, _ in outcomes:
        if published and _read(directory / fmt) is None:
            return None
    return outcomes


def _read(path: Path) -> Artifact | None:
    try:
        return read_artifact(path)
    except CheckFailed:
        return None
    except Exception:  # noqa: BLE001 - a damaged earlier export is redone, not fatal
        return None


def _accuracy(artifact: Artifact) -> str:
    value = artifact.metrics.accuracy
    return "-" if value is None else f"{value:.4f}"


def _settings_text(step: dict) -> str:
    ((technique, settings),) = step.items()
    inner = ", ".join(f"{k}={v}" for k, v in (settings or {}).items())
    return f"{technique}({inner})"


def _indented(report: Reporter) -> Reporter:
    return lambda line: report(f"    {line}")
