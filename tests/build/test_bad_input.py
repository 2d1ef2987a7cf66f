"""edgesmith build refuses bad input in one line, exit 2, before TensorFlow loads."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgesmith.app.build import load_recipe
from edgesmith.core.errors import EdgesmithError


def edgesmith(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgesmith", *args], capture_output=True, text=True, timeout=120
    )


def write(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_unknown_profile_lists_the_known_ones(tmp_path, error_line):
    line = error_line(edgesmith("build", "--device", "toaster", "--data", "digits",
                                "--out", str(tmp_path / "o")))  # fmt: skip
    assert "unknown device profile 'toaster'" in line
    assert "cpu-x86" in line and "mcu" in line
    assert not (tmp_path / "o").exists()


def test_profile_with_a_bad_field_names_it(tmp_path, error_line):
    profile = tmp_path / "bad.yaml"
    profile.write_text("name: bad\nruntime: litert\nformats: [tflite-int8]\nthreads: 0\n")
    line = error_line(edgesmith("build", "--device", str(profile), "--data", "digits",
                                "--out", str(tmp_path / "o")))  # fmt: skip
    assert "threads must be a whole number >= 1. Received: 0" in line


@pytest.mark.parametrize(
    ("recipe", "expected"),
    [
        ({"candidates": [{"name": "a"}], "tarin": {}}, "unknown BuildRecipe key(s): tarin"),
        ({"candidates": [{"name": "a", "step": []}]}, "unknown CandidateSpec key(s): step"),
        (
            {"candidates": [{"name": "a", "steps": [{"shrink": {}}]}]},
            "candidate a: recipe step 1: unknown technique 'shrink'",
        ),
        (
            {"candidates": [{"name": "a", "steps": [{"prune": {"sparsity": 1.2}}]}]},
            "sparsity must be in [0.0, 1.0). Received: 1.2",
        ),
        ({"train": {"epochs": 0}, "candidates": [{"name": "a"}]}, "epochs must be a whole"),
        ({"candidates": [{"name": "a"}, {"name": "a"}]}, "repeated: a"),
        ({"candidates": []}, "candidates must be a non-empty list"),
    ],
)
def test_bad_recipes_are_refused_by_name(tmp_path, recipe, expected):
    with pytest.raises(EdgesmithError) as caught:
        load_recipe(write(tmp_path / "r.json", recipe))
    assert expected in str(caught.value)


def test_bad_recipe_through_the_cli_is_one_line_and_fast(tmp_path, error_line):
    recipe = write(tmp_path / "r.json", {"candidates": [{"name": "a", "steps": [{"zap": {}}]}]})
    line = error_line(edgesmith("build", "--device", "cpu-x86", "--recipe", str(recipe),
                                "--data", "digits", "--out", str(tmp_path / "o")))  # fmt: skip
    assert "unknown technique 'zap'" in line


def test_a_bad_recipe_is_refused_before_tensorflow_is_imported(tmp_path):
    recipe = write(tmp_path / "r.json", {"candidates": [{"name": "a", "steps": [{"zap": {}}]}]})
    argv = ["build", "--device", "cpu-x86", "--recipe", str(recipe), "--data", "digits",
            "--out", str(tmp_path / "o")]  # fmt: skip
    probe = (
        "import sys\nfrom edgesmith.app.cli import main\n"
        f"code = main({argv!r})\n"
        "heavy = sorted(m for m in ('tensorflow', 'tf_keras') if m in sys.modules)\n"
        "print('RESULT', code, heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "RESULT 2 []" in result.stdout, result.stdout + result.stderr


def test_unknown_shipped_recipe_lists_the_shipped_ones(tmp_path, error_line):
    line = error_line(edgesmith("build", "--device", "cpu-x86", "--recipe", "fastest",
                                "--data", "digits", "--out", str(tmp_path / "o")))  # fmt: skip
    # the shipped build recipes only: run recipes (recipes/train/) are not build recipes
    assert line.endswith("unknown build recipe 'fastest': expected one of default") or (
        "expected one of default" in line and "cifar10-best" not in line
    )


def test_bad_data_spec(tmp_path, error_line):
    line = error_line(edgesmith("build", "--device", "cpu-x86", "--data", "imagenet",
                                "--out", str(tmp_path / "o")))  # fmt: skip
    assert "imagenet" in line


def test_unreachable_host_is_one_line_naming_it(tmp_path, error_line):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    line = error_line(
        edgesmith(
            "build",
            "--device",
            "cpu-x86",
            "--data",
            "digits",
            "--out",
            str(tmp_path / "o"),
            "--host",
            "nobody@127.0.0.1",
            "--ssh-option",
            f"Port={port}",
        )  # fmt: skip
    )
    assert "cannot reach nobody@127.0.0.1 over ssh" in line
    assert not (tmp_path / "o" / "work").exists()  # refused before any work


def test_build_help_has_examples():
    run = edgesmith("build", "--help")
    assert run.returncode == 0
    assert "edgesmith build --device cpu-x86 --data digits --out runs/build" in run.stdout
    assert "--host" in run.stdout and "exit codes" in run.stdout


def test_importing_build_loads_no_tensorflow():
    code = (
        "import sys, edgesmith.app.build, edgesmith.app.build.commands; "
        "edgesmith.app.build.load_recipe();"
        "print([m for m in ('tensorflow', 'tf_keras', 'keras') if m in sys.modules])"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "[]", run.stderr


def test_a_profile_naming_a_delegate_needs_allow_delegate_before_any_work(tmp_path, error_line):
    profile = tmp_path / "npu.yaml"
    profile.write_text(
        (Path(__file__).resolve().parents[2] / "src" / "edgesmith" / "devices" / "cpu-x86.yaml")
        .read_text()
        .replace("name: cpu-x86", "name: my-npu")
        .replace("provider: xnnpack", f"provider: delegate:{tmp_path / 'vendor.so'}")
    )
    line = error_line(edgesmith("build", "--device", str(profile), "--data", "digits",
                                "--out", str(tmp_path / "o")))  # fmt: skip
    assert "vendor.so" in line and "--allow-delegate" in line
    assert not (tmp_path / "o").exists()  # refused before the build folder was made
