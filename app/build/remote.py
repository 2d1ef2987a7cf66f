"""The bench on the device itself, from the host, over SSH: copy, run ``edgesmith bench``, fetch.

The device needs only ``pip install "edgesmith[runtime]"`` (no TensorFlow). The exported files
are copied with ``scp`` into one staging directory on the device, ``edgesmith bench ... --json -``
runs there with the device profile's settings, and its JSON (on stdout), Markdown report and
plots come back. The build then judges the latency budget on the device's own numbers.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgesmith.app.build.candidates import Exported
from edgesmith.errors import EdgesmithError
from edgesmith.profiles import DeviceProfile
from edgesmith.progress import Reporter
from edgesmith.runtime.timing import TimingPlan

CONNECT_TIMEOUT_S = 10
UNREACHABLE = 255  # ssh's exit status for its own failures (connection, authentication)


def ssh_options(options: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``-o`` flags shared by ssh and scp: never prompt, give up on a dead host quickly."""
    flags = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}"]
    for option in options:
        flags += ["-o", option]
    return flags


def _run(command: list[str], host: str, what: str) -> subprocess.CompletedProcess:
    """Run ssh/scp; an unreachable host is one line naming it, exit code 2."""
    if shutil.which(command[0]) is None:
        raise EdgesmithError(f"--host needs {command[0]} on this machine: install openssh-client")
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode == UNREACHABLE:
        raise EdgesmithError(f"cannot reach {host} over ssh ({what}): {_last_line(result.stderr)}")
    return result


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def check_reachable(host: str, options: tuple[str, ...] = ()) -> None:
    """Fail in seconds, before any training, when the device cannot be reached over SSH.

    Raises:
        EdgesmithError: one line naming the host and ssh's reason (exit code 2).
    """
    result = _run(["ssh", *ssh_options(options), host, "true"], host, "connecting")
    if result.returncode != 0:
        raise EdgesmithError(f"cannot run commands on {host} over ssh: {_last_line(result.stderr)}")


def bench_args(names: list[str], data: str, plan: TimingPlan) -> list[str]:
    """The ``edgesmith bench`` arguments a build runs, here or on the device, in a staging dir.

    The staging directory holds one artifact directory per name and ``device.json``; the
    results come back as JSON on stdout, the report and plots as files beside the models.
    """
    return [
        "bench", *names, "--data", data, "--device", "device.json",
        "--min-runs", str(plan.min_runs), "--min-seconds", str(plan.min_seconds),
        "--warmup-runs", str(plan.warmup_runs), "--warmup-seconds", str(plan.warmup_seconds),
        "--json", "-", "--report", "report.md", "--plots", "plots", "--quiet",
    ]  # fmt: skip


def parse_bench_output(stdout: str, expected: int, where: str) -> dict:
    """The bench document printed by ``--json -``, checked to hold one record per model.

    Raises:
        EdgesmithError: when the output is not the JSON or holds other models.
    """
    try:
        document = json.loads(stdout)
    except ValueError:
        raise EdgesmithError(
            f"edgesmith bench {where} did not print its JSON: {_last_line(stdout)}"
        ) from None
    if len(document.get("results", [])) != expected:
        raise EdgesmithError(f"edgesmith bench {where} returned results for other models")
    return document


def staged_name(exported: Exported) -> str:
    """The file's directory name in a bench staging directory: ``<candidate>__<format>``."""
    return f"{exported.candidate}__{exported.format}"


def remote_bench(
    host: str,
    exported: list[Exported],
    *,
    data: str,
    profile: DeviceProfile,
    plan: TimingPlan,
    out: Path,
    remote_edgesmith: str = "edgesmith",
    remote_dir: str = "edgesmith-build",
    options: tuple[str, ...] = (),
    report: Reporter,
) -> tuple[dict, list[Path]]:
    """Bench the exported files on ``host`` and bring the results back into ``out``.

    Args:
        host: ``user@device`` (anything ssh accepts, including a Host alias of ~/.ssh/config).
        exported: the files to measure, each published.
        data: data spec for inputs and accuracy (resolved on the device).
        profile: the device profile; sent along, so the device applies its provider, threads
            and affinity.
        plan: timing minimums.
        out: local directory that receives ``bench.json``, ``report.md`` and ``plots/``.
        remote_edgesmith: the ``edgesmith`` command on the device.
        remote_dir: staging directory on the device (relative paths are under its home).
        options: extra ssh ``-o`` options (``Port=2222``, ``IdentityFile=...``).
        report: progress lines.

    Returns:
        The device's bench document (records in the order of ``exported``) and the plots.

    Raises:
        EdgesmithError: for an unreachable host, a missing remote edgesmith, or a failed bench.
    """
    flags = ssh_options(options)
    names = [staged_name(e) for e in exported]
    staging = f"{remote_dir.rstrip('/')}/bench"
    report(f"[remote] {host}: copying {len(exported)} file(s) to {staging}")
    _run(
        ["ssh", *flags, host, f"rm -rf {shlex.quote(staging)} && mkdir -p {shlex.quote(staging)}"],
        host,
        "preparing the staging directory",
    )
    with tempfile.TemporaryDirectory(prefix="edgesmith-remote-") as tmp:
        local = Path(tmp) / "bench"
        local.mkdir()
        for name, item in zip(names, exported, strict=True):
            shutil.copytree(item.artifact.path, local / name)
        (local / "device.json").write_text(json.dumps(profile.to_dict(), indent=2) + "\n")
        copied = _run(
            [
                "scp",
                "-q",
                "-r",
                *flags,
                *[str(p) for p in sorted(local.iterdir())],
                f"{host}:{staging}/",
            ],
            host,
            "copying the models",
        )
        if copied.returncode != 0:
            raise EdgesmithError(f"copying to {host} failed: {_last_line(copied.stderr)}")
    bench = [remote_edgesmith, *bench_args(names, data, plan)]
    command = f"cd {shlex.quote(staging)} && " + " ".join(shlex.quote(part) for part in bench)
    report(f"[remote] {host}: edgesmith bench {len(names)} model(s) --data {data}")
    result = _run(["ssh", *flags, host, command], host, "running the bench")
    if result.returncode == 127:
        raise EdgesmithError(
            f"{remote_edgesmith!r} was not found on {host}: there, pip install "
            '"edgesmith[runtime]", or pass --remote-edgesmith PATH'
        )
    if result.returncode != 0:
        raise EdgesmithError(
            f"edgesmith bench failed on {host} (exit {result.returncode}): "
            f"{_last_line(result.stderr)}"
        )
    document = parse_bench_output(result.stdout, len(exported), f"on {host}")
    document["host"] = host
    out.mkdir(parents=True, exist_ok=True)
    fetched = _run(
        ["scp", "-q", "-r", *flags, f"{host}:{staging}/report.md", f"{host}:{staging}/plots",
         str(out)],
        host,
        "fetching the report",
    )  # fmt: skip
    plots = sorted((out / "plots").glob("*.png")) if fetched.returncode == 0 else []
    if fetched.returncode != 0:
        report(f"[remote] {host}: report/plots not fetched: {_last_line(fetched.stderr)}")
    report(f"[remote] {host}: measured {len(exported)} model(s)")
    return document, plots
