"""The bench on the device itself, from the host, over SSH: copy, run ``edgesmith bench``, fetch.

The device needs only ``pip install "edgesmith[runtime]"`` (no TensorFlow). Each run creates
its own fresh staging directory on the device (``mktemp -d`` under ``--remote-dir``), copies
the exported files there with ``scp``, runs ``edgesmith bench ... --json`` in it with the
device profile's settings, fetches the Markdown report and plots, and removes the staging
directory again, also when a step fails: nothing that was on the device before is touched.

The SSH boundary is kept narrow on purpose. The host is validated (``[user@]host[:port]``,
never a leading ``-``) and always follows ``--`` in ssh's and scp's argv, so it cannot be read
as an option (``-oProxyCommand=...`` would run a local command). Every remote path is built
from a validated character set, so the same text is correct for the ssh shell and for scp in
either protocol. Every call has a connect timeout and an overall timeout, and the results are
matched to the models by the sha256 of each model file, not by position.

The device may be an emulated one: ``edgesmith device setup aarch64 DIR`` writes
``DIR/bin/edgesmith``, the CLI under qemu-aarch64, which names its emulated CPU on stderr; the
document that comes back is then labelled as ``bench --emulate`` labels its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from edgesmith.app.build.candidates import Exported
from edgesmith.app.build.options import DEFAULT_REMOTE_TIMEOUT_S
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.profiles import DeviceProfile
from edgesmith.core.progress import Reporter
from edgesmith.runtime import BenchDocument, BenchResult
from edgesmith.runtime.emulation import device_emulation, relabel
from edgesmith.runtime.timing import TimingPlan

CONNECT_TIMEOUT_S = 10
SERVER_ALIVE_INTERVAL_S = 15  # a device that stops answering is given up after 4 intervals
SHORT_STEP_S = 60  # connect check, mktemp, cleanup: seconds, never minutes
LIMIT_HINT = " (--remote-timeout sets the limit for the copy, the bench and the fetch)"
UNREACHABLE = 255  # ssh's exit status for its own failures (connection, authentication)
STAGING_PREFIX = "edgesmith-bench."

_HOST = re.compile(
    r"(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9._-]*)@)?"
    r"(?P<host>[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_REMOTE_PATH = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")  # shlex's safe set: quoting is a no-op
_RANDOM_PART = re.compile(r"[A-Za-z0-9_]{6,}")  # what mktemp put for the X's: one plain name
_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9]*[= ]\S.*")


@dataclasses.dataclass(frozen=True)
class Host:
    """A validated SSH destination.

    Attributes:
        text: what the user wrote (used in messages and in the bench document's ``host``).
        user: the login name, or None for ssh's default.
        name: the host name, IP address (IPv6 without brackets) or ~/.ssh/config alias.
        port: the port, or None for ssh's default.
    """

    text: str
    user: str | None
    name: str
    port: int | None

    @property
    def destination(self) -> str:
        """``user@name`` as ssh takes it (always placed after ``--``)."""
        return self.name if self.user is None else f"{self.user}@{self.name}"

    def remote(self, path: str) -> str:
        """``user@name:path`` as scp takes it (IPv6 addresses in brackets)."""
        name = f"[{self.name}]" if ":" in self.name else self.name
        login = name if self.user is None else f"{self.user}@{name}"
        return f"{login}:{shlex.quote(path)}"

    def port_options(self) -> list[str]:
        """``-o Port=N`` when the host string named a port (ssh and scp spell it alike)."""
        return [] if self.port is None else ["-o", f"Port={self.port}"]


def parse_host(text: str) -> Host:
    """Validate ``--host``: ``[user@]host[:port]``, never anything ssh could read as an option.

    Raises:
        EdgesmithError: one line naming the value and the expected form (exit code 2).
    """
    match = _HOST.fullmatch(text) if isinstance(text, str) else None
    port = None if match is None or match["port"] is None else int(match["port"])
    if match is None or (port is not None and not 1 <= port <= 65535):
        raise EdgesmithError(
            f"--host {text!r} is not a host: expected [user@]host[:port] with letters, digits, "
            "'.', '_' and '-' (not first), e.g. pi@raspberrypi.local or pi@10.0.0.7:2222"
        )
    return Host(text, match["user"], match["host"].strip("[]"), port)


def check_remote_dir(remote_dir: str) -> str:
    """Validate ``--remote-dir``: a non-empty path in a character set no shell or scp rewrites.

    Relative paths are under the device user's home directory. Runs stage in a fresh directory
    inside it, so the folder itself may hold anything: nothing there is ever removed.

    Raises:
        EdgesmithError: for an empty value, ``~``, spaces, quotes or a leading ``-`` (exit 2).
    """
    if (
        not isinstance(remote_dir, str)
        or not _REMOTE_PATH.fullmatch(remote_dir)
        or remote_dir.startswith("-")
    ):
        raise EdgesmithError(
            f"--remote-dir {remote_dir!r} is not a usable device path: expected a non-empty "
            "path of letters, digits and _@%+=:,./- not starting with '-' (relative paths are "
            "under the device user's home, e.g. edgesmith-build)"
        )
    return remote_dir.rstrip("/") or "/"


def check_ssh_options(options: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate ``--ssh-option`` values: each is ``Key=value`` (or ``Key value``), one line.

    Raises:
        EdgesmithError: naming the first value that is not an option setting (exit 2).
    """
    for option in options:
        if not isinstance(option, str) or not _OPTION.fullmatch(option) or "\n" in option:
            raise EdgesmithError(
                f"--ssh-option {option!r} is not an ssh option: expected Key=value "
                "(e.g. Port=2222, IdentityFile=~/.ssh/pi)"
            )
    return tuple(options)


def check_remote_settings(
    host: str, remote_dir: str, options: tuple[str, ...] | list[str], timeout: float
) -> Host:
    """Validate every remote setting before any work, without touching the network.

    Returns:
        The validated host.

    Raises:
        EdgesmithError: naming the first bad value (exit code 2).
    """
    parsed = parse_host(host)
    check_remote_dir(remote_dir)
    check_ssh_options(options)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 1e9:
        raise EdgesmithError(
            f"--remote-timeout must be a number of seconds > 0. Received: {timeout!r}"
        )
    return parsed


def ssh_options(host: Host, options: tuple[str, ...] | list[str] = ()) -> list[str]:
    """``-o`` flags shared by ssh and scp: never prompt, give up on a dead host quickly."""
    flags = [
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
        "-o", f"ServerAliveInterval={SERVER_ALIVE_INTERVAL_S}",
        "-o", "ServerAliveCountMax=4",
    ]  # fmt: skip
    flags += host.port_options()
    for option in options:
        flags += ["-o", option]
    return flags


def ssh_command(host: Host, flags: list[str], command: str) -> list[str]:
    """``ssh FLAGS -- DESTINATION COMMAND``: the host can never be taken for an option."""
    return ["ssh", *flags, "--", host.destination, command]


def scp_command(flags: list[str], sources: list[str], target: str) -> list[str]:
    """``scp -q -r FLAGS -- SOURCES TARGET``: no source or target can be taken for an option."""
    return ["scp", "-q", "-r", *flags, "--", *sources, target]


def _run(
    command: list[str], host: Host, what: str, timeout: float, *, limit: str = ""
) -> subprocess.CompletedProcess:
    """Run ssh/scp; an unreachable host or a step past its time is one line, exit code 2.

    The command runs in its own process group, and a step past its time has the whole group
    killed (ssh and anything it started, such as a ProxyCommand), so nothing keeps running
    here, holding the output pipes, after the build has given up.
    """
    if shutil.which(command[0]) is None:
        raise EdgesmithError(f"--host needs {command[0]} on this machine: install openssh-client")
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise EdgesmithError(
                f"{what} on {host.text} took longer than {timeout:g} s and was stopped{limit}"
            ) from None
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            raise
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if result.returncode == UNREACHABLE:
        raise EdgesmithError(
            f"cannot reach {host.text} over ssh ({what}): {_last_line(result.stderr)}"
        )
    return result


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def check_reachable(host: str | Host, options: tuple[str, ...] = ()) -> Host:
    """Fail in seconds, before any training, when the device cannot be reached over SSH.

    Returns:
        The validated host.

    Raises:
        EdgesmithError: a malformed host or option, or one line naming the host and ssh's
            reason (exit code 2).
    """
    host = host if isinstance(host, Host) else parse_host(host)
    flags = ssh_options(host, check_ssh_options(options))
    result = _run(ssh_command(host, flags, "true"), host, "connecting", SHORT_STEP_S)
    if result.returncode != 0:
        raise EdgesmithError(
            f"cannot run commands on {host.text} over ssh: {_last_line(result.stderr)}"
        )
    return host


def bench_args(
    names: list[str], data: str, plan: TimingPlan, *, allow_delegate: bool = False
) -> list[str]:
    """The ``edgesmith bench`` arguments a build runs, here or on the device, in a staging dir.

    The staging directory holds one artifact directory per name and ``device.json``; the
    results come back as JSON on stdout, the report and plots as files beside the models.
    ``allow_delegate`` passes on the user's ``--allow-delegate`` (never implied by a profile).
    """
    return [
        "bench", *names, "--data", data, "--device", "device.json",
        "--min-runs", str(plan.min_runs), "--min-seconds", str(plan.min_seconds),
        "--warmup-runs", str(plan.warmup_runs), "--warmup-seconds", str(plan.warmup_seconds),
        "--json", "--report", "report.md", "--plots", "plots", "--quiet",
        *(["--allow-delegate"] if allow_delegate else []),
    ]  # fmt: skip


def parse_bench_output(stdout: str, expected: int, where: str) -> BenchDocument:
    """The bench document printed by ``--json``, checked to hold one record per model.

    Raises:
        EdgesmithError: when the output is not the JSON or holds other models.
    """
    try:
        document = json.loads(stdout)
    except ValueError:
        raise EdgesmithError(
            f"edgesmith bench {where} did not print its JSON: {_last_line(stdout)}"
        ) from None
    from edgesmith.runtime import parse_bench_document

    parsed = parse_bench_document(document, f"the bench document from {where}")  # exit 2 if bad
    if len(parsed.results) != expected:
        raise EdgesmithError(f"edgesmith bench {where} returned results for other models")
    return parsed


def match_results(
    document: BenchDocument, exported: list[Exported], where: str
) -> tuple[BenchResult, ...]:
    """Each exported file's bench record, found by the sha256 of its model file.

    A bench may list its records in any order, and a device could measure a file other than
    the one sent (a stale copy, a changed file); matching by content hash makes both visible
    instead of pinning one model's numbers on another. Among records with the right hash, the
    one benched under the file's staged name is preferred (two candidates may be identical).

    Returns:
        The records in the order of ``exported``.

    Raises:
        EdgesmithError: naming the first file no record measured (exit code 2).
    """
    matched = []
    for item in exported:
        manifest = item.artifact.manifest
        expected = manifest.files[manifest.model_file]
        same = [r for r in document.results if r.sha256 == expected]
        named = [r for r in same if r.path == staged_name(item)]
        if not same:
            raise EdgesmithError(
                f"edgesmith bench {where} returned no result for {item.name} "
                f"(sha256 {expected[:12]}...): the measured files are not the ones sent"
            )
        matched.append((named or same)[0])
    return tuple(matched)


def staged_name(exported: Exported) -> str:
    """The file's directory name in a bench staging directory: ``<candidate>__<format>``."""
    return f"{exported.candidate}__{exported.format}"


def remote_bench(
    host: str | Host,
    exported: list[Exported],
    *,
    data: str,
    profile: DeviceProfile,
    plan: TimingPlan,
    out: Path,
    remote_edgesmith: str = "edgesmith",
    remote_dir: str = "edgesmith-build",
    options: tuple[str, ...] = (),
    timeout: float = DEFAULT_REMOTE_TIMEOUT_S,
    allow_delegate: bool = False,
    report: Reporter,
) -> tuple[dict, list[Path]]:
    """Bench the exported files on ``host`` and bring the results back into ``out``.

    Args:
        host: ``[user@]host[:port]`` (a Host alias of ~/.ssh/config works too).
        exported: the files to measure, each published.
        data: data spec for inputs and accuracy (resolved on the device).
        profile: the device profile; sent along, so the device applies its provider, threads
            and affinity.
        plan: timing minimums.
        out: an empty local directory that receives ``report.md`` and ``plots/``.
        remote_edgesmith: the ``edgesmith`` command on the device.
        remote_dir: where the run's staging directory is made on the device (relative paths
            are under its home); it is created when missing and nothing in it is removed.
        options: extra ssh ``-o`` options (``IdentityFile=...``).
        timeout: the longest the copy, the bench and the fetch may each take, in seconds.
        allow_delegate: let the device's bench load the delegate library the profile names.
        report: progress lines.

    Returns:
        The device's bench document (records in the order of ``exported``) and the plots.

    Raises:
        EdgesmithError: for an unreachable host, a step past its time, a missing remote
            edgesmith, a failed bench, or results that do not match the files sent.
    """
    host = host if isinstance(host, Host) else parse_host(host)
    base = check_remote_dir(remote_dir)
    flags = ssh_options(host, check_ssh_options(options))
    staging = _make_staging(host, flags, base)
    report(f"[remote] {host.text}: copying {len(exported)} file(s) to {staging}")
    try:
        document, plots = _bench_in(
            host, flags, staging, exported, data, profile, plan, out, remote_edgesmith, timeout,
            report, allow_delegate=allow_delegate,
        )  # fmt: skip
    finally:
        _remove_staging(host, flags, staging, report)
    report(f"[remote] {host.text}: measured {len(exported)} model(s)")
    return document, plots


def _make_staging(host: Host, flags: list[str], base: str) -> str:
    """A fresh directory for this run only, made by ``mktemp -d`` on the device."""
    template = f"{base.rstrip('/')}/{STAGING_PREFIX}XXXXXXXX"
    command = f"mkdir -p -- {shlex.quote(base)} && mktemp -d {shlex.quote(template)}"
    result = _run(
        ssh_command(host, flags, command), host, "making the staging directory", SHORT_STEP_S
    )
    staging = result.stdout.strip()
    prefix = template[: -len("XXXXXXXX")]
    if (
        result.returncode != 0
        or not staging.startswith(prefix)
        or not _RANDOM_PART.fullmatch(staging[len(prefix) :])
    ):
        raise EdgesmithError(
            f"cannot make a staging directory under {base} on {host.text}: "
            f"{_last_line(result.stderr or result.stdout)}"
        )
    return staging


def _remove_staging(host: Host, flags: list[str], staging: str, report: Reporter) -> None:
    """Remove this run's staging directory; a failure is reported, never raised over another."""
    command = f"rm -rf -- {shlex.quote(staging)}"
    try:
        result = _run(
            ssh_command(host, flags, command), host, "removing the staging directory",
            SHORT_STEP_S,
        )  # fmt: skip
    except EdgesmithError as exc:
        report(f"[remote] {host.text}: {staging} was left on the device: {exc}")
        return
    if result.returncode != 0:
        report(
            f"[remote] {host.text}: {staging} was left on the device: {_last_line(result.stderr)}"
        )


def _bench_in(
    host: Host,
    flags: list[str],
    staging: str,
    exported: list[Exported],
    data: str,
    profile: DeviceProfile,
    plan: TimingPlan,
    out: Path,
    remote_edgesmith: str,
    timeout: float,
    report: Reporter,
    *,
    allow_delegate: bool = False,
) -> tuple[dict, list[Path]]:
    """Copy, bench and fetch inside an existing staging directory on the device."""
    names = [staged_name(e) for e in exported]
    with tempfile.TemporaryDirectory(prefix="edgesmith-remote-") as tmp:
        local = Path(tmp) / "bench"
        local.mkdir()
        for name, item in zip(names, exported, strict=True):
            shutil.copytree(item.artifact.path, local / name)
        (local / "device.json").write_text(json.dumps(profile.device_dict(), indent=2) + "\n")
        sources = [str(p) for p in sorted(local.iterdir())]
        copied = _run(
            scp_command(flags, sources, host.remote(staging + "/")),
            host,
            "copying the models",
            timeout,
            limit=LIMIT_HINT,
        )
        if copied.returncode != 0:
            raise EdgesmithError(f"copying to {host.text} failed: {_last_line(copied.stderr)}")
    bench = [remote_edgesmith, *bench_args(names, data, plan, allow_delegate=allow_delegate)]
    command = f"cd {shlex.quote(staging)} && " + " ".join(shlex.quote(part) for part in bench)
    report(f"[remote] {host.text}: edgesmith bench {len(names)} model(s) --data {data}")
    result = _run(
        ssh_command(host, flags, command), host, "running the bench", timeout, limit=LIMIT_HINT
    )
    if result.returncode == 127:
        raise EdgesmithError(
            f"{remote_edgesmith!r} was not found on {host.text}: there, pip install "
            '"edgesmith[runtime]", or pass --remote-edgesmith PATH'
        )
    if result.returncode not in (0, 1):  # 1: a model over a budget, which the build judges
        raise EdgesmithError(
            f"edgesmith bench failed on {host.text} (exit {result.returncode}): "
            f"{_last_line(result.stderr)}"
        )
    if not result.stdout.strip():
        raise EdgesmithError(
            f"edgesmith bench on {host.text} printed no results (exit {result.returncode}): "
            f"{_last_line(result.stderr)}"
        )
    document = parse_bench_output(result.stdout, len(exported), f"on {host.text}")
    results = match_results(document, exported, f"on {host.text}")
    document = document.replace(results=results, host=host.text)
    out.mkdir(parents=True, exist_ok=True)
    sources = [host.remote(f"{staging}/report.md"), host.remote(f"{staging}/plots")]
    fetched = _run(
        scp_command(flags, sources, str(out.resolve())),
        host,
        "fetching the report",
        timeout,
        limit=LIMIT_HINT,
    )
    plots = sorted((out / "plots").glob("*.png")) if fetched.returncode == 0 else []
    if fetched.returncode != 0:
        report(f"[remote] {host.text}: report/plots not fetched: {_last_line(fetched.stderr)}")
    return _label_if_emulated(document, result.stderr, host, profile, out, report), plots


def _label_if_emulated(
    document: BenchDocument,
    stderr: str,
    host: Host,
    profile: DeviceProfile,
    out: Path,
    report: Reporter,
) -> BenchDocument:
    """The device's document, labelled as an emulator's when the device's launcher said so.

    Over SSH an emulated device (``device setup aarch64``'s launcher) looks like any other
    device: the launcher's first stderr line is the only sign. Its document gets what
    ``bench --emulate`` gives its own (the ``emulation`` record, the machine named as the
    emulated CPU) and its report a note on top, so no copy of it passes for a device's. The
    build judges every budget but the latency one on it: an emulator's wall-clock is not a
    device's time (``bench --emulate`` refuses ``--device`` for the same reason).
    """
    emulated = device_emulation(stderr, f"at {host.text}")
    if emulated is None:
        return document
    record = emulated.record()
    limit = profile.budgets.to_dict().get("max_latency_ms")
    judged = "" if limit is None else f"; max_latency_ms {limit:g} is not judged on it"
    report(
        f"[remote] {host.text} is an emulated {emulated.target} ({emulated.cpu}): its latency "
        f"is the emulator's wall-clock on the host, not a device's time{judged}"
    )
    markdown = out / "report.md"
    if markdown.is_file():
        text = markdown.read_text(encoding="utf-8")
        markdown.write_text(f"> {record.emulator}: {record.note}\n\n{text}", encoding="utf-8")
    return relabel(document, emulated)
