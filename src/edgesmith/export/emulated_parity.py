"""Export's parity check on emulated CPUs (``export --check-on aarch64,x86-64-avx2``).

A file passes parity on this host's CPU, but the device runs other kernels: an int8 kernel on
an ARM core, or on an x86 core without VNNI (ONNX Runtime's U8S8 path saturates there), rounds
its own way, so the same file can lose accuracy on the CPU it was made for. With ``--check-on``
each file that passed here runs again under qemu-user, through the same runtime and provider,
on the same raw eval pixels, and is judged by the very rule the native check used
(:func:`edgesmith.export.parity.compare` against the source's outputs, so the tolerance is
spent once, against the source, not again against the native file). A file that fails there
fails its parity check like any other: exit 1, not published (unless ``--allow-mismatch``).
Agreement with the native file's own outputs is recorded beside it: how far the target's
kernels moved the answers. Latency is never taken: an emulator's is not the device's.

One child per target serves every file of the export, because a Python under qemu takes
seconds to start; the children start before the conversion, so their start-up overlaps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import Reporter
from edgesmith.export.parity import ParityCheck

FLAG = "--check-on"


def check_available(targets: Sequence[str]) -> None:
    """Refuse, before any conversion, a target this machine cannot emulate.

    Raises:
        EdgesmithError: one line naming what to install (qemu-user-static) or make
            (``edgesmith device setup aarch64``).
    """
    if targets:
        from edgesmith.runtime import check_emulators

        check_emulators(targets, flag=FLAG)


class EmulatedCheckers:
    """The emulated children of one export, one per target, and the check each file gets.

    Args:
        targets: the emulated CPUs (``ExportOptions.check_on``).
        report: progress lines (the children's own, prefixed with their target).

    Raises:
        EdgesmithError: when a target cannot be emulated here.
    """

    def __init__(self, targets: Sequence[str], report: Reporter) -> None:
        from edgesmith.runtime import EmulatedSession

        self._start = lambda target: EmulatedSession(target, flag=FLAG, report=report)
        self._report = report
        self._sessions: list = []
        try:
            for target in targets:
                self._sessions.append(self._start(target))
        except BaseException:
            self.close(kill=True)
            raise

    @property
    def targets(self) -> list[str]:
        """The emulated targets, in the order given."""
        return [session.target for session in self._sessions]

    def check(
        self,
        path: Path,
        pixels: np.ndarray,
        labels: np.ndarray,
        reference: np.ndarray,
        native: np.ndarray,
        check: ParityCheck,
    ) -> list[dict[str, Any]]:
        """The ``metrics.emulated`` records of one file: its parity check on each target.

        Args:
            path: the exported file (already written).
            pixels: the raw eval pixels the native check ran on.
            labels: their labels.
            reference: the source's outputs on them.
            native: the file's own outputs here.
            check: the native check's settings and rule, applied unchanged on each target.

        Returns:
            One record per target (:class:`~edgesmith.core.manifest.EmulatedParity` fields).
            A file the target cannot run (the runtime's error, or the child crashing on it)
            gets a failing record saying so, and a crashed child is restarted for the next.
        """
        records = []
        for index, session in enumerate(self._sessions):
            try:
                ran = session.predict(path, pixels, xnnpack=check.xnnpack, provider=check.provider)
                records.append(
                    emulated_record(
                        session.target, session.emulator.cpu, f"{ran.runtime}/{ran.provider}",
                        np.asarray(ran.outputs, dtype=np.float32), native, reference, labels, check,
                    )
                )  # fmt: skip
            except EdgesmithError as exc:  # a failing record, like any file that fails parity
                records.append(_cannot_run(session, len(labels), exc))
                if not session.alive:
                    session.close(kill=True)
                    self._sessions[index] = self._start(session.target)
        return records

    def close(self, *, kill: bool = False) -> None:
        """End every child (at once with ``kill``: an interrupted export waits for none)."""
        for session in self._sessions:
            session.close(kill=kill)
        self._sessions = []

    def __enter__(self) -> EmulatedCheckers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(kill=exc_info[0] is not None)


def emulated_record(
    target: str,
    emulator: str,
    runtime: str,
    outputs: np.ndarray,
    native: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray,
    check: ParityCheck,
) -> dict[str, Any]:
    """One target's record: the native parity rule on the emulated outputs, and their distance.

    The distance is to the native file's own outputs (top-1 agreement, largest difference).

    Raises:
        EdgesmithError: when the emulated outputs are not shaped like the native ones.
    """
    if outputs.shape != native.shape:
        raise EdgesmithError(
            f"on emulated {target} the file output {outputs.shape} for {native.shape} natively"
        )
    judged = check.judge(outputs, reference, labels)
    diff = np.abs(outputs.astype(np.float64) - native.astype(np.float64))
    record: dict[str, Any] = {
        "target": target,
        "emulator": emulator,
        "runtime": runtime,
        "accuracy": judged["accuracy"],
        "num_eval": judged["num_eval"],
        "agreement": judged["agreement"],
        "agreement_native": round(float(np.mean(outputs.argmax(1) == native.argmax(1))), 6),
        "max_abs_diff": judged["max_abs_diff"],
        "max_abs_diff_native": float(diff.max()) if np.all(np.isfinite(diff)) else float("inf"),
        "parity": judged["parity"],
    }
    for key in ("accuracy_test", "parity_failures"):
        if key in judged:
            record[key] = judged[key]
    return record


def _cannot_run(session, num_eval: int, error: EdgesmithError) -> dict[str, Any]:
    return {
        "target": session.target,
        "emulator": session.emulator.cpu,
        "accuracy": 0.0,
        "num_eval": num_eval,
        "agreement": 0.0,
        "agreement_native": 0.0,
        "parity": "fail",
        "parity_failures": [f"cannot run there: {error}"],
    }


def merge(metrics: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Put the emulated records into a file's parity metrics; any failure fails the file.

    The failures join ``parity_failures`` named by target, so the export's one failure message
    (and ``--allow-mismatch``) treat them as every other parity failure.
    """
    metrics["emulated"] = records
    failures = [
        f"on emulated {record['target']}: {failure}"
        for record in records
        for failure in record.get("parity_failures", [])
    ]
    if failures:
        metrics["parity"] = "fail"
        metrics["parity_failures"] = [*metrics.get("parity_failures", []), *failures]


def report_lines(name: str, records: list[dict[str, Any]]) -> list[str]:
    """One progress/summary line per target for a format's records."""
    return [
        f"{name}: emulated {r['target']}: accuracy {r['accuracy']:.4f}, agreement "
        f"{r['agreement']:.4f} with the source, {r['agreement_native']:.4f} with the native "
        f"file: parity {r['parity']}"
        for r in records
    ]
