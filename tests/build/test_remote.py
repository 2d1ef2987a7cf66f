"""build --host without a device: host and path validation, ssh/scp argv, staging, timeouts.

``ssh`` and ``scp`` are replaced on PATH by small scripts that do locally what the real tools
would do on the device (run the command in a fake home, copy files), and log their argv; the
remote ``edgesmith`` is a script printing a bench document. So the staging folder's life, the
cleanup on failure, the timeouts and the matching of results by sha256 are tested in a second,
with no sshd and no TensorFlow. tests/build/test_build.py runs the same path over a real sshd.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgesmith.app.build.candidates import Exported
from edgesmith.app.build.remote import (
    check_remote_dir,
    check_remote_settings,
    check_ssh_options,
    parse_host,
    remote_bench,
    scp_command,
    ssh_command,
    ssh_options,
)
from edgesmith.core.artifacts import Artifact, artifact_id
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import DatasetRecord, InputRecord, Manifest, Metrics
from edgesmith.core.profiles import load_profile
from edgesmith.runtime.timing import TimingPlan

PLAN = TimingPlan(min_runs=5, min_seconds=0.01, warmup_runs=1, warmup_seconds=0.0)

FAKE_SSH = """\
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps(["ssh", *args]) + "\\n")
at = args.index("--")
destination, command = args[at + 1 : at + 3]
os.chdir(os.environ["FAKE_HOME"])
os.execvp("sh", ["sh", "-c", command])
"""

FAKE_SCP = """\
import json, os, re, shutil, sys
args = sys.argv[1:]
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps(["scp", *args]) + "\\n")
at = args.index("--")
*sources, target = args[at + 1 :]
def local(path):
    match = re.match(r"[^/]*?:(.*)", path)
    if match is None:
        return path
    rest = match.group(1)
    return rest if rest.startswith("/") else os.path.join(os.environ["FAKE_HOME"], rest)
target = local(target)
for source in map(local, sources):
    if not os.path.exists(source):
        sys.exit(f"scp: {source}: No such file or directory")
    into = os.path.join(target, os.path.basename(source.rstrip("/")))
    if os.path.isdir(source):
        shutil.copytree(source, into)
    else:
        shutil.copy2(source, into)
"""

# The device's `edgesmith bench`: one schema-valid record per staged artifact, by its manifest.
FAKE_EDGESMITH = """\
import hashlib, json, os, sys, time
mode = os.environ.get("FAKE_BENCH", "ok")
if mode == "sleep":  # hung: says who it is, and that it finished if it is ever let finish
    open(os.environ["FAKE_BENCH_PID"], "w").write(str(os.getpid()))
    time.sleep(60)
    open(os.environ["FAKE_BENCH_PID"] + ".finished", "w").write("")
if mode == "fail":  # exit 3: a crash (exit 1 is a model over a budget, judged by the build)
    sys.stderr.write("edgesmith: error: the runtime crashed\\n")
    sys.exit(3)
args = sys.argv[2:]
names = args[: args.index("--data")]
results = []
for i, name in enumerate(names):
    manifest = json.load(open(os.path.join(name, "manifest.json")))
    model = os.path.join(name, manifest["model_file"])
    sha = hashlib.sha256(open(model, "rb").read()).hexdigest()
    if mode == "wrong-sha" and i == 0:
        sha = "0" * 64
    ms = 1.0 + i
    results.append({
        "path": name, "model_file": model, "sha256": sha, "format": "tflite",
        "latency_ms": {"p50": ms, "p90": ms, "p99": ms, "mean": ms, "min": ms, "max": ms,
                       "runs": 5},
        "accuracy": None, "num_eval": 0,
    })
if mode == "reverse":
    results.reverse()
os.makedirs("plots", exist_ok=True)
open("plots/latency.png", "wb").write(b"png")
open("report.md", "w").write("# edgesmith bench\\n")
print(json.dumps({"schema": "edgesmith.bench", "schema_version": 2, "data": "digits",
                  "settings": {}, "machine": {}, "results": results}))
"""


def running(pid: int) -> bool:
    """Whether process ``pid`` is alive (a killed one may linger a moment as a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


@pytest.fixture
def device(tmp_path, monkeypatch):
    """A fake device: ssh/scp on PATH act on ``home``; returns (home, edgesmith, log)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script(bin_dir / "ssh", FAKE_SSH)
    script(bin_dir / "scp", FAKE_SCP)
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "ssh.log"
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_HOME", str(home))
    monkeypatch.setenv("FAKE_SSH_LOG", str(log))
    edgesmith = script(tmp_path / "device-edgesmith", FAKE_EDGESMITH)
    return home, edgesmith, log


def exported_files(tmp_path: Path, count: int = 2) -> list[Exported]:
    """``count`` tiny published artifacts with distinct model files."""
    rows = []
    for i in range(count):
        folder = tmp_path / "exports" / f"c{i}" / "tflite-int8"
        folder.mkdir(parents=True)
        data = f"model {i}".encode()
        (folder / "model.tflite").write_bytes(data)
        files = {"model.tflite": hashlib.sha256(data).hexdigest()}
        manifest = Manifest(
            id=artifact_id(files),
            stage="export",
            technique="tflite-int8",
            format="tflite",
            model_file="model.tflite",
            files=files,
            config={},
            input=InputRecord(shape=(8, 8, 1)),
            labels=("a", "b"),
            dataset=DatasetRecord(spec="digits"),
            metrics=Metrics(),
            tool_versions={},
            created="2026-01-01T00:00:00+00:00",
        )
        (folder / "manifest.json").write_text(json.dumps(manifest.to_dict()))
        rows.append(Exported(f"c{i}", "tflite-int8", Artifact(folder, manifest)))
    return rows


def bench(host, rows, out, edgesmith, remote_dir="edgesmith-build", **kwargs):
    lines: list[str] = []
    result = remote_bench(
        host,
        rows,
        data="digits",
        profile=load_profile("cpu-x86"),
        plan=PLAN,
        out=out,
        remote_edgesmith=str(edgesmith),
        remote_dir=remote_dir,
        report=lines.append,
        **kwargs,
    )
    return result, lines


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


# --- validation and argv: no ssh at all ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "user", "name", "port"),
    [
        ("pi@raspberrypi.local", "pi", "raspberrypi.local", None),
        ("raspberrypi", None, "raspberrypi", None),
        ("pi@10.0.0.7:2222", "pi", "10.0.0.7", 2222),
        ("root@[::1]:22", "root", "::1", 22),
        ("build_bot@jetson-01", "build_bot", "jetson-01", None),
    ],
)
def test_valid_hosts_parse(text, user, name, port):
    host = parse_host(text)
    assert (host.user, host.name, host.port) == (user, name, port)


@pytest.mark.parametrize(
    "text",
    [
        "-oProxyCommand=touch /tmp/x",
        "pi@-oProxyCommand=x",
        "-pi@host",
        "",
        "pi@host:0",
        "pi@host:70000",
        "pi@host;reboot",
        "pi@host name",
        "pi@host\n",
        "a@b@c",
    ],
)
def test_hosts_ssh_could_misread_are_refused(text):
    with pytest.raises(EdgesmithError, match="is not a host: expected \\[user@\\]host\\[:port\\]"):
        parse_host(text)


def test_the_host_always_follows_a_double_dash():
    host = parse_host("pi@10.0.0.7:2222")
    flags = ssh_options(host, ("IdentityFile=/k",))
    argv = ssh_command(host, flags, "true")
    assert argv[0] == "ssh" and argv[-3:] == ["--", "pi@10.0.0.7", "true"]
    assert "--" not in argv[:-3]
    assert ["-o", "Port=2222"] == argv[argv.index("Port=2222") - 1 : argv.index("Port=2222") + 1]
    assert "ConnectTimeout=10" in flags and "BatchMode=yes" in flags
    copy = scp_command(flags, ["/tmp/a", "/tmp/b"], host.remote("x/edgesmith-bench.abc/"))
    assert copy[copy.index("--") :] == [
        "--",
        "/tmp/a",
        "/tmp/b",
        "pi@10.0.0.7:x/edgesmith-bench.abc/",
    ]
    assert parse_host("root@[::1]:22").remote("/d") == "root@[::1]:/d"  # scp needs the brackets


@pytest.mark.parametrize("remote_dir", ["", "-rf", "~/x", "a b", "a;b", "$(id)", "x'y", "a\nb"])
def test_remote_dirs_a_shell_or_scp_could_rewrite_are_refused(remote_dir):
    with pytest.raises(EdgesmithError, match="is not a usable device path"):
        check_remote_dir(remote_dir)


def test_remote_dir_forms_that_are_kept():
    assert check_remote_dir("/home/pi/") == "/home/pi"
    assert check_remote_dir("/") == "/"
    assert check_remote_dir("edgesmith-build") == "edgesmith-build"


def test_ssh_options_and_timeouts_are_checked():
    assert check_ssh_options(["Port=2222", "IdentityFile ~/.ssh/pi"]) == (
        "Port=2222",
        "IdentityFile ~/.ssh/pi",
    )
    with pytest.raises(EdgesmithError, match="--ssh-option '-v' is not an ssh option"):
        check_ssh_options(["-v"])
    for bad in (0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(EdgesmithError, match="--remote-timeout must be a number of seconds"):
            check_remote_settings("pi@host", "d", (), bad)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgesmith", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_a_host_that_is_an_ssh_option_runs_nothing(tmp_path):
    witness = tmp_path / "proxy-ran"
    run = cli("build", "--device", "cpu-x86", "--data", "digits", "--out", str(tmp_path / "o"),
              f"--host=-oProxyCommand=touch {witness}")  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert "is not a host" in run.stderr
    time.sleep(0.2)
    assert not witness.exists()  # ssh never saw it
    assert not (tmp_path / "o").exists()


def test_an_empty_remote_dir_is_refused_before_any_work(tmp_path):
    run = cli("build", "--device", "cpu-x86", "--data", "digits", "--out", str(tmp_path / "o"),
              "--host", "pi@127.0.0.1", "--remote-dir", "")  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "--remote-dir '' is not a usable device path" in run.stderr
    assert not (tmp_path / "o").exists()


def test_build_flags_come_from_the_options_fields():
    """One source: each BuildOptions field's default is what --help shows and build() uses."""
    from edgesmith.app.build.options import BuildOptions
    from edgesmith.app.cli import build_parser

    args = build_parser().parse_args(["build", "--device", "d", "--data", "x", "--out", "o"])
    assert all(getattr(args, name) is None for name in BuildOptions().to_dict())
    args = build_parser().parse_args(
        [
            "build",
            "--device",
            "d",
            "--data",
            "x",
            "--out",
            "o",
            "--remote-timeout",
            "60",
            "--ssh-option",
            "Port=2222",
            "--ssh-option",
            "User=pi",
            "--from",
            "runs/r8",
        ]
    )
    from edgesmith.core.cli_args import config_from_args

    options = config_from_args(BuildOptions, args)
    assert options.remote_timeout == 60.0 and options.ssh_options == ("Port=2222", "User=pi")
    assert options.source == "runs/r8" and options.remote_dir == BuildOptions().remote_dir


# --- a run against the fake device ----------------------------------------------------------


def staging_folders(folder: Path) -> list[Path]:
    return sorted(folder.glob("edgesmith-bench.*"))


def test_each_run_stages_in_its_own_folder_and_removes_it(tmp_path, device):
    home, edgesmith, log = device
    mine = home / "bench"  # what the old code rm -rf'd with --remote-dir ~
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    (home / "photo.jpg").write_text("the user's")
    rows = exported_files(tmp_path)
    out = tmp_path / "out"
    (document, plots), lines = bench("pi@device", rows, out, edgesmith, remote_dir=str(home))
    assert [r.path for r in document.results] == ["c0__tflite-int8", "c1__tflite-int8"]
    assert document.host == "pi@device"
    assert [p.name for p in plots] == ["latency.png"] and (out / "report.md").is_file()
    assert (mine / "notes.txt").read_text() == "the user's"
    assert (home / "photo.jpg").read_text() == "the user's"
    assert staging_folders(home) == []  # removed afterwards
    made = [c for c in calls(log) if c[0] == "ssh" and "mktemp -d" in c[-1]]
    assert len(made) == 1 and f"mktemp -d {home}/edgesmith-bench.XXXXXXXX" in made[0][-1]
    removed = [c for c in calls(log) if c[0] == "ssh" and c[-1].startswith("rm -rf -- ")]
    assert len(removed) == 1 and removed[0][-1].startswith(f"rm -rf -- {home}/edgesmith-bench.")
    for call in calls(log):  # every ssh and scp call: options, then --, then operands
        assert call.index("--") > call.index(f"ConnectTimeout={10}")
    # a second run gets a fresh folder of its own, and a relative --remote-dir is under home
    bench("pi@device", rows, out / "again", edgesmith)
    made = [c for c in calls(log) if c[0] == "ssh" and "mktemp -d" in c[-1]]
    assert "mktemp -d edgesmith-build/edgesmith-bench.XXXXXXXX" in made[-1][-1]
    assert (home / "edgesmith-build").is_dir() and staging_folders(home / "edgesmith-build") == []


def test_results_are_matched_by_sha256_not_by_position(tmp_path, device, monkeypatch):
    home, edgesmith, _ = device
    rows = exported_files(tmp_path)
    monkeypatch.setenv("FAKE_BENCH", "reverse")
    (document, _), _ = bench("pi@device", rows, tmp_path / "out", edgesmith)
    expected = [r.artifact.manifest.files["model.tflite"] for r in rows]
    assert [r.sha256 for r in document.results] == expected
    assert [r.latency.p50 for r in document.results] == [1.0, 2.0]


@pytest.mark.parametrize(
    ("fake_bench", "match"),
    [
        ("wrong-sha", "returned no result for c0/tflite-int8"),
        ("fail", "edgesmith bench failed on pi@device .*crashed"),
    ],
    ids=["a-result-for-another-file", "a-failed-bench"],
)
def test_a_bad_remote_bench_is_refused_and_removes_the_staging_folder(
    tmp_path, device, monkeypatch, fake_bench, match
):
    home, edgesmith, _ = device
    monkeypatch.setenv("FAKE_BENCH", fake_bench)
    with pytest.raises(EdgesmithError, match=match):
        bench("pi@device", exported_files(tmp_path), tmp_path / "out", edgesmith)
    assert staging_folders(home / "edgesmith-build") == []


def test_a_hung_bench_is_stopped_by_the_timeout(tmp_path, device, monkeypatch):
    home, edgesmith, _ = device
    pid_file = tmp_path / "bench.pid"
    monkeypatch.setenv("FAKE_BENCH", "sleep")
    monkeypatch.setenv("FAKE_BENCH_PID", str(pid_file))
    with pytest.raises(EdgesmithError) as caught:
        bench("pi@device", exported_files(tmp_path), tmp_path / "out", edgesmith, timeout=1.0)
    # stopped, neither waited for (it would have finished its 60 s) nor left running
    assert not Path(f"{pid_file}.finished").exists()
    if pid_file.exists():  # else it was killed before it even started
        assert not running(int(pid_file.read_text()))
    message = str(caught.value)
    assert message.startswith("running the bench on pi@device took longer than 1 s")
    assert "--remote-timeout" in message and "\n" not in message
    assert staging_folders(home / "edgesmith-build") == []


def test_a_missing_remote_edgesmith_is_named(tmp_path, device):
    home, _, _ = device
    with pytest.raises(EdgesmithError, match="'/nonexistent/edgesmith' was not found on pi@dev"):
        bench("pi@dev", exported_files(tmp_path), tmp_path / "out", "/nonexistent/edgesmith")
    assert staging_folders(home / "edgesmith-build") == []


def test_a_staging_path_other_than_mktemps_own_is_never_removed(tmp_path, device):
    home, edgesmith, log = device
    fake_mktemp = tmp_path / "bin" / "mktemp"  # a device answering with a path outside its dir
    fake_mktemp.write_text('#!/bin/sh\necho "edgesmith-build/edgesmith-bench./../.."\n')
    fake_mktemp.chmod(0o755)
    with pytest.raises(EdgesmithError, match="cannot make a staging directory under edgesmith"):
        bench("pi@device", exported_files(tmp_path), tmp_path / "out", edgesmith)
    assert not any("rm -rf" in call[-1] for call in calls(log) if call[0] == "ssh")
