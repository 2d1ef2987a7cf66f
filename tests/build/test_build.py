"""edgesmith build end to end on digits: choose, bundle, reuse, impossible budgets, mcu."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgesmith.app.build import build, load_recipe
from edgesmith.core.progress import silent
from edgesmith.runtime.timing import TimingPlan

FAST = TimingPlan(min_runs=50, min_seconds=0.2, warmup_runs=5, warmup_seconds=0.05)
RECIPE = {
    "train": {"model": "resnet8", "epochs": 3},
    "candidates": [
        {"name": "dense", "steps": []},
        {"name": "channels50", "steps": [{"prune": {"sparsity": 0.5, "structure": "channels"}}]},
        {"name": "qat", "steps": [{"qat": {"epochs": 1}}]},
    ],
}
RECIPE["candidates"][1]["steps"][0]["prune"]["epochs"] = 1


def edgesmith(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgesmith", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "small.json"
    path.write_text(json.dumps(RECIPE))
    return path


@pytest.fixture(scope="module")
def cpu_build(tmp_path_factory):
    """A cpu-x86 build of three candidates, with its progress lines and wall time."""
    out = tmp_path_factory.mktemp("build") / "cpu"
    lines: list[str] = []
    started = time.perf_counter()
    result = build("cpu-x86", "digits", out, recipe=RECIPE, timing=FAST, report=lines.append)
    return result, lines, time.perf_counter() - started, out


def test_cpu_build_chooses_the_most_accurate_fitting_candidate(cpu_build):
    result, lines, _, out = cpu_build
    rows = result.rows
    names = [r["name"] for r in rows]
    assert "dense/tflite-fp32" in names and "qat/tflite-int8" in names
    assert "qat/tflite-fp32" not in names  # a QAT model exports only to its int8 formats
    fitting = [r for r in rows if r["fits"]]
    assert result.chosen is not None and result.chosen["fits"]
    assert result.chosen["accuracy"] == max(r["accuracy"] for r in fitting)
    for row in rows:  # every row has its numbers and a verdict per budget of the profile
        assert row["accuracy"] is not None and row["size_bytes"] > 0 and row["p50_ms"] > 0
        assert set(row["budgets"]) == {"max_size_kb", "max_latency_ms", "max_ram_mb"}
        # the bench ran in a fresh process: its peak memory is the runtime's, not TensorFlow's
        assert row["budgets"]["max_ram_mb"]["value"] < 400
    document = json.loads((out / "candidates.json").read_text())
    assert document["chosen"] == result.chosen["name"]
    assert len(document["candidates"]) == len(rows)
    assert any(line.startswith("[train] resnet8 on digits") for line in lines)
    assert not any("reusing" in line for line in lines)


def test_bundle_is_complete_and_its_infer_py_runs(cpu_build, tmp_path):
    result, _, _, out = cpu_build
    bundle = result.bundle
    assert bundle == out / "bundle" and not (out / "bundle.partial").exists()
    for name in (
        "model.tflite",
        "manifest.json",
        "labels.txt",
        "bench.json",
        "report.md",
        "infer.py",
        "README.txt",
        "candidates.json",
        "candidates.md",
    ):
        assert (bundle / name).is_file(), name
    assert sorted(p.name for p in (bundle / "plots").iterdir()) == ["latency.png", "tradeoff.png"]
    assert "](plots/tradeoff.png)" in (bundle / "report.md").read_text()
    readme = (bundle / "README.txt").read_text()
    assert 'pip install "edgesmith[runtime]"' in readme
    assert "edgesmith bench bundle/ --data digits" in readme
    assert (bundle / "labels.txt").read_text().split() == [str(i) for i in range(10)]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["id"] == result.chosen["id"]

    from PIL import Image

    import edgesmith.runtime as rt
    from edgesmith.core.datasets import load_dataset

    data = load_dataset("digits")
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray(data.x_eval[i].squeeze()).save(paths[-1])
    run = subprocess.run(
        [sys.executable, str(bundle / "infer.py"), *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    with rt.load(bundle) as model:
        expected = model.probabilities(model.predict(data.x_eval[:3]))
    printed = run.stdout.strip().splitlines()
    assert len(printed) == 3
    for line, probs in zip(printed, expected, strict=True):
        top = int(np.argmax(probs))
        assert line.split(": ", 1)[1].startswith(f"{model.labels[top]} {probs[top]:.3f}")
    # the bundle is an artifact the bench reads as it is, as on the device
    bench = edgesmith("bench", str(bundle), "--data", "digits", "--min-runs", "20",
                      "--min-seconds", "0.05", "--json", "--quiet")  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    record = json.loads(bench.stdout)["results"][0]
    assert record["accuracy"] == pytest.approx(result.chosen["accuracy"])


def test_second_run_reuses_the_finished_work(cpu_build, monkeypatch):
    first, _, _, out = cpu_build
    redone: list[str] = []

    def never(name):
        def stage(*args, **kwargs):
            redone.append(name)
            raise AssertionError(f"the second build ran {name} again instead of reusing it")

        return stage

    # the stages the build calls when a step is not reused (candidates.py imports them late)
    for module, name in (
        ("edgesmith.train", "train"),
        ("edgesmith.compress", "run_recipe"),
        ("edgesmith.export", "export_formats"),
    ):
        monkeypatch.setattr(f"{module}.{name}", never(name))
    lines: list[str] = []
    again = build("cpu-x86", "digits", out, recipe=RECIPE, timing=FAST, report=lines.append)
    assert redone == []
    reusing = [line for line in lines if "reusing" in line]
    assert any(line.startswith("[train] reusing") for line in reusing)
    assert any(line.startswith("[channels50] step 1/1 prune: reusing") for line in reusing)
    assert any(line.startswith("[qat] export: reusing") for line in reusing)
    assert len(reusing) == 1 + 2 + 3  # train, two compress steps, three exports
    assert [r["id"] for r in again.rows] == [r["id"] for r in first.rows]


def test_a_changed_setting_is_not_reused(cpu_build):
    _, _, _, out = cpu_build
    recipe = json.loads(json.dumps(RECIPE))
    recipe["candidates"] = [{"name": "qat", "steps": [{"qat": {"epochs": 1, "seed": 1}}]}]
    lines: list[str] = []
    build("cpu-x86", "digits", out, recipe=recipe, timing=FAST, report=lines.append)
    assert any(line.startswith("[train] reusing") for line in lines)
    assert any(line.startswith("[qat] step 1/1 qat: qat(epochs=1, seed=1)") for line in lines)
    assert not any(line.startswith("[qat] step 1/1 qat: reusing") for line in lines)


def test_impossible_budget_exits_1_naming_the_closest(cpu_build, recipe_file, tmp_path):
    _, _, _, out = cpu_build
    profile = tmp_path / "tight.yaml"
    profile.write_text(
        "name: tight\nruntime: litert\nprovider: xnnpack\nthreads: 1\n"
        "formats: [tflite-int8, tflite-dynamic, tflite-fp16, tflite-fp32]\n"
        "budgets: {max_size_kb: 20, min_accuracy: 0.999}\n"
    )
    run = edgesmith("build", "--device", str(profile), "--recipe", str(recipe_file),
                    "--data", "digits", "--out", str(out), "--min-runs", "50",
                    "--min-seconds", "0.2")  # fmt: skip
    assert run.returncode == 1, run.stderr
    error = run.stderr.strip().splitlines()[-1]
    assert error.startswith("edgesmith: error: no candidate meets the budgets of device tight")
    assert "nothing met max_size_kb 20 KB" in error and "min_accuracy 99.90%" in error
    # the smallest file misses least: channels50's int8 file
    assert "closest is channels50/tflite-int8, which misses max_size_kb by" in error
    assert "Traceback" not in run.stderr
    assert "FAIL" in run.stdout  # the table is still shown
    assert json.loads((out / "candidates.json").read_text())["chosen"] is None


def test_mcu_build_fits_100_kb_with_the_c_array(cpu_build, tmp_path):
    from edgesmith.export.c_array import read_c_array

    _, _, _, cpu_out = cpu_build
    trained = next((cpu_out / "work").glob("train-*")) / "model"
    recipe = {"candidates": [RECIPE["candidates"][0], RECIPE["candidates"][2]]}
    result = build("mcu", "digits", tmp_path / "mcu", recipe=recipe, source=trained,
                   timing=FAST, report=silent)  # fmt: skip
    assert [r["name"] for r in result.rows] == ["dense/tflite-int8", "qat/tflite-int8"]
    bundle = result.bundle
    manifest = json.loads((bundle / "manifest.json").read_text())
    model = (bundle / "model.tflite").read_bytes()
    assert len(model) <= 100 * 1024
    assert manifest["target"]["target"] == "tflm" and manifest["target"]["verdict"] == "pass"
    assert read_c_array((bundle / "model_data.cc").read_text()) == model
    assert "g_model_data" in (bundle / "model_data.h").read_text()
    assert "model_data.cc/.h" in (bundle / "README.txt").read_text()
    assert set(result.chosen["budgets"]) == {"max_size_kb", "max_arena_kb"}
    dense = result.rows[0]
    assert json.loads((Path(dense["path"]) / "manifest.json").read_text())["input"]["raw_input"]


def test_default_recipe_has_the_four_candidates():
    recipe = load_recipe()
    assert [c.name for c in recipe.candidates] == ["dense", "channels50", "qat", "prune75"]
    assert recipe.train_config(data="digits").epochs <= 20


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A throwaway sshd on a free loopback port, with a generated host key and client key."""
    import os
    import shutil
    import socket

    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd_bin).is_file() or shutil.which("ssh") is None:
        pytest.skip("sshd/ssh not installed (apt-get install openssh-server openssh-client)")
    if os.geteuid() != 0:
        pytest.skip("a loopback sshd for this user needs root here")
    folder = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)],
                       check=True)  # fmt: skip
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPermitRootLogin yes\n"
        f"PasswordAuthentication no\nStrictModes no\nUsePAM no\nPidFile {folder / 'sshd.pid'}\n"
        "Subsystem sftp internal-sftp\n"  # scp copies over SFTP (OpenSSH >= 9)
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    server = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    options = (
        f"Port={port}",
        f"IdentityFile={folder / 'client_key'}",
        "UserKnownHostsFile=/dev/null",
        "StrictHostKeyChecking=no",
        "LogLevel=ERROR",
    )
    import getpass

    yield f"{getpass.getuser()}@127.0.0.1", options, folder
    server.terminate()
    server.wait(timeout=10)


@pytest.mark.slow
def test_host_benches_on_the_device_over_ssh(cpu_build, sshd):
    from edgesmith.core.errors import EdgesmithError

    first, _, _, out = cpu_build
    host, options, folder = sshd
    remote = folder / "device-home"
    (remote / "bench").mkdir(parents=True)  # the user's own folder, once rm -rf'd by a build
    (remote / "bench" / "keep.txt").write_text("the user's")
    lines: list[str] = []
    result = build(
        "cpu-x86",
        "digits",
        out,
        recipe=RECIPE,
        timing=FAST,
        host=host,
        ssh_options=options,
        remote_edgesmith=str(Path(sys.executable).parent / "edgesmith"),
        remote_dir=str(remote),
        report=lines.append,
    )
    copying = [line for line in lines if line.startswith(f"[remote] {host}: copying 9 file(s)")]
    assert len(copying) == 1 and f"to {remote}/edgesmith-bench." in copying[0]
    assert result.document.host == host
    # the run staged in a folder of its own and removed it; the user's files are untouched
    assert sorted(p.name for p in remote.iterdir()) == ["bench"]
    assert (remote / "bench" / "keep.txt").read_text() == "the user's"
    assert [r["name"] for r in result.rows] == [r["name"] for r in first.rows]
    # the verdicts rest on the device's numbers: the rows carry the remote bench's records
    remote_p50 = [r.latency.p50 for r in result.document.results]
    assert [r["p50_ms"] for r in result.rows] == remote_p50
    assert result.chosen is not None
    bundle = result.bundle
    assert json.loads((bundle / "bench.json").read_text())["host"] == host
    assert f"measured on {host}" in (bundle / "README.txt").read_text()
    assert (bundle / "plots" / "tradeoff.png").is_file()
    with pytest.raises(EdgesmithError, match="was not found on"):
        build("cpu-x86", "digits", out, recipe=RECIPE, timing=FAST, host=host,
              ssh_options=options, remote_edgesmith="/nonexistent/edgesmith",
              remote_dir=str(remote), report=silent)  # fmt: skip
    assert sorted(p.name for p in remote.iterdir()) == ["bench"]  # removed on failure too
    with pytest.raises(EdgesmithError, match="took longer than 0.5 s"):  # a hung device
        build("cpu-x86", "digits", out, recipe=RECIPE, timing=FAST, host=host,
              ssh_options=options, remote_edgesmith=str(Path(sys.executable).parent / "edgesmith"),
              remote_dir=str(remote), remote_timeout=0.5, report=silent)  # fmt: skip
    assert sorted(p.name for p in remote.iterdir()) == ["bench"]
