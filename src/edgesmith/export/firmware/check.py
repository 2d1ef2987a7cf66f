"""Export ``--target cortex-m4/-m7/-m55``: the firmware check, from its needs to its records.

``check_available`` runs before anything is converted: a missing cross compiler, emulator or
TFLM source folder is one line naming the Debian packages (or ``EDGESMITH_TFLM_SOURCES``), not
a failure ten minutes in. ``static_check`` refuses, by name, what the generated firmware cannot
hold (an op without a resolver entry, non-int8 I/O) when the file is written. ``run_check``
runs once the file has passed parity: it compiles the firmware, runs it in QEMU on the first
eval images and judges it.

The verdict follows the parity rule for quantised files: the firmware and LiteRT run the same
int8 file with different kernels (CMSIS-NN rounds some requantisations its own way; measured
97% top-1 agreement with LiteRT on MLCommons' ResNet-8 and 100% with TFLM's reference
kernels), so agreement is reported, not required to be 1.0. The check fails when agreement is
below the parity floor (``CATASTROPHIC_AGREEMENT``, 50%: a broken build, wrong arena or wrong
input quantisation) or when the firmware's accuracy is, beyond chance, more than
``--max-accuracy-drop`` points below LiteRT's on the same images (McNemar's exact test, as
parity). A failed check means the device would not compute what the host measured, so the
file is not published: ``--allow-mismatch`` keeps files the *source* disagrees with, not a
firmware that disagrees with its own file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgesmith.core.errors import CheckFailed, EdgesmithError
from edgesmith.export.parity import CATASTROPHIC_AGREEMENT

from . import build, handoff, project, sources

TOOLS = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "arm-none-eabi-g++": "libstdc++-arm-none-eabi-newlib",
    "arm-none-eabi-size": "binutils-arm-none-eabi",
    "make": "make",
    "patch": "patch",
    "qemu-system-arm": "qemu-system-arm",
}
INSTRUCTIONS_LABEL = (
    "retired instructions per inference, QEMU -icount shift=0 (median over the images): "
    "deterministic and comparable between models; not time, QEMU models no pipeline or memory "
    "wait states"
)
AGREEMENT_NOTE = (
    "agreement is with LiteRT on the same int8 inputs; CMSIS-NN rounds some ops its own way, "
    "so it is below 1.0 without an error (TFLM's reference kernels match the firmware bit for bit)"
)


def check_available(target: str, tflm_sources: str | Path | None = None) -> None:
    """Refuse, in one line, a machine that cannot build or run the target's firmware.

    Raises:
        EdgesmithError: naming every missing tool's Debian package, or how to give the TFLM
            sources (``--tflm-sources DIR`` / ``EDGESMITH_TFLM_SOURCES``) when they are neither
            given nor unpacked in the cache.
    """
    project.board_for(target)
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        packages = " ".join(dict.fromkeys(p for t in missing for p in TOOLS[t].split()))
        raise EdgesmithError(
            f"--target {target} builds and runs a firmware, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not on PATH: apt-get install {packages}"
        )
    if not sources.is_prepared():
        sources.sources_dir(tflm_sources)  # raises the one line naming the flag and variable


def static_check(report: dict[str, Any], model_path: Path, where: str, target: str) -> dict:
    """What can be refused from the file alone: ops the firmware cannot register, non-int8 I/O.

    Returns:
        The target record before the firmware runs (``verdict: pass``).

    Raises:
        CheckFailed: naming the op(s) or the tensor.
    """
    from .pipeline import io_bytes

    try:
        project.op_resolver_header(report["operators"])
        io_bytes(Path(model_path).read_bytes())
    except EdgesmithError as exc:
        raise CheckFailed(f"{where}: --target {target}: {exc}") from None
    return {"target": target, "verdict": "pass"}


def run_check(
    model_path: Path,
    target: str,
    pixels: np.ndarray,
    labels: np.ndarray,
    artifact_dir: Path,
    where: str,
    *,
    max_accuracy_drop: float,
    tflm_sources: str | Path | None = None,
) -> dict[str, Any]:
    """Build and run the firmware on ``pixels``; the target record, with ``files`` to publish.

    The firmware's sources, build flags and ELF are copied into ``artifact_dir/firmware/``.

    Raises:
        CheckFailed: the firmware's agreement or accuracy fails the rule (module docstring),
            or the firmware could not be built or run (its message).
    """
    from edgesmith.runtime import load

    from .pipeline import firmware_report

    board = project.board_for(target)
    model = load(model_path, xnnpack=True)
    try:
        inputs = model.prepare(pixels)  # the int8 tensor the device is fed
    finally:
        model.close()
    with tempfile.TemporaryDirectory(prefix="edgesmith-fw-") as tmp:
        work = Path(tmp)
        try:
            report = firmware_report(
                model_path, target, inputs, work, labels=labels, tflm_sources=tflm_sources,
                max_accuracy_drop=max_accuracy_drop,
            )  # fmt: skip
        except EdgesmithError as exc:
            raise CheckFailed(f"{where}: --target {target}: {exc}") from None
        tflm = sources.prepare(tflm_sources)
        files = handoff.write_handoff(
            work / "project",
            artifact_dir,
            board=board,
            tflm=tflm,
            library=build.library_path(tflm, board),
            arena_bytes=report.arena_bytes,
        )
    record = firmware_record(report, files, max_accuracy_drop)
    if record["verdict"] == "fail":
        raise CheckFailed(
            f"{where}: --target {target}: the firmware fails its check on "
            f"{report.num_images} images: {'; '.join(record['failures'])}"
        )
    return {"target": target, "verdict": "pass", "firmware": record, "files": files}


def firmware_record(report, files: list[str], max_accuracy_drop: float) -> dict[str, Any]:
    """The manifest's ``target.firmware`` (a :class:`~edgesmith.core.manifest.Firmware`)."""
    failures = []
    if report.agreement_vs_litert < CATASTROPHIC_AGREEMENT:
        failures.append(
            f"agreement with LiteRT {report.agreement_vs_litert:.4f} < {CATASTROPHIC_AGREEMENT} "
            "(a broken build or input quantisation, not rounding)"
        )
    test = report.accuracy_test
    if test is not None and test["verdict"] == "fail":
        failures.append(
            f"accuracy {report.accuracy:.4f} vs LiteRT's {report.litert_accuracy:.4f}: "
            f"{test['drop_points']:.2f} points lower, beyond the {max_accuracy_drop:g}-point "
            f"tolerance (McNemar exact p = {test['p_value']:.3g} < {test['alpha']})"
        )
    record: dict[str, Any] = {
        "board": report.machine,
        "emulator": f"{report.versions.get('qemu', 'qemu-system-arm')}; -M {report.machine} "
        "-icount shift=0, semihosting",
        "num_images": report.num_images,
        "accuracy": _round(report.accuracy),
        "litert_accuracy": _round(report.litert_accuracy),
        "agreement": round(report.agreement_vs_litert, 6),
        "verdict": "fail" if failures else "pass",
        "accuracy_test": test,
        "failures": failures or None,
        "note": AGREEMENT_NOTE,
        "flash_kb": round(report.flash_kb, 2),
        "ram_kb": round(report.ram_kb, 2),
        "arena_bytes": report.arena_bytes,
        "arena_used_bytes": report.arena_used_bytes,
        "instructions_per_inference": report.instructions_per_inference,
        "instructions_label": INSTRUCTIONS_LABEL,
        "instructions_deterministic": report.instructions_deterministic,
        "versions": dict(report.versions),
        "library_cached": report.library_cached,
        "library_build_seconds": round(report.library_build_seconds, 1),
        "emulation_seconds": round(report.emulation_seconds, 2),
        "files": list(files),
    }
    return {k: v for k, v in record.items() if v is not None or k.endswith("accuracy")}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def summary_line(name: str, target: str, record: dict[str, Any]) -> str:
    """One line for the export's summary: what the firmware computed and what it costs."""
    accuracy = record.get("accuracy")
    litert = record.get("litert_accuracy")
    acc = "" if accuracy is None else f"accuracy {accuracy:.4f} (LiteRT {litert:.4f}), "
    return (
        f"{name} firmware on {target} ({record['board']}, QEMU): {acc}agreement with LiteRT "
        f"{record['agreement']:.4f} on {record['num_images']} images; flash "
        f"{record['flash_kb']:.1f} KB, RAM {record['ram_kb']:.1f} KB (arena used "
        f"{record['arena_used_bytes']:,} B); {record['instructions_per_inference']:,} "
        f"instructions/inference (QEMU count, not time): {record['verdict']}"
    )
