"""The import rule (no TensorFlow in the core or the runtime) and an installed-wheel check."""

import email.message
import email.parser
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "keras", "tf_keras")


def imported_modules(code: str) -> set:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return set(result.stdout.split())


def test_core_cli_and_runtime_never_import_tensorflow():
    modules = imported_modules(
        "import edgesmith, edgesmith.app.cli, edgesmith.core.artifacts, edgesmith.core.datasets, "
        "edgesmith.runtime, edgesmith.runtime.embedded_metadata, edgesmith.app.info\n"
        "from edgesmith.train import TrainConfig\n"
        "edgesmith.app.cli.build_parser()\n"
        "edgesmith.core.datasets.load_dataset('digits')"
    )
    assert not {m.split(".")[0] for m in modules} & set(HEAVY)


@pytest.mark.slow
def test_the_train_stage_does_import_tf_keras():
    modules = imported_modules("import edgesmith.train.trainer")  # (zoo.py is backend-neutral)
    assert "tf_keras" in modules and "tensorflow" in modules


def test_legacy_keras_is_chosen_in_exactly_one_place():
    skip = {".venv", "tests", "build", "bench"}
    sources = [p for p in ROOT.glob("**/*.py") if not skip & set(p.relative_to(ROOT).parts)]
    setters = [p for p in sources if 'environ["TF_USE_LEGACY_KERAS"]' in p.read_text()]
    assert [p.relative_to(ROOT).as_posix() for p in setters] == ["src/edgesmith/tfkeras/backend.py"]
    direct = [
        p.relative_to(ROOT).as_posix()
        for p in sources
        if "\nimport tensorflow" in p.read_text() or "\nfrom tensorflow" in p.read_text()
    ]
    assert direct == []


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> Path:
    """edgesmith's wheel, built once from a copy of the tree (no build/ or egg-info left)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    # Build from a copy, so the build leaves no build/ or egg-info in the working tree.
    source = tmp_path / "src"
    junk = shutil.ignore_patterns(".venv*", ".git", "*.egg-info", "__pycache__")
    top_junk = {
        "build",
        "dist",
        "runs",
        "bench",
        "tests",
    }  # only at the root: edgesmith/build stays

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = junk(folder, names)
        return skipped | (top_junk & set(names) if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, source, ignore=ignore)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    return next((tmp_path / "dist").glob("edgesmith-*.whl"))


def wheel_metadata(wheel: Path) -> email.message.Message:
    """The wheel's METADATA (Requires-Python, Requires-Dist with their extras)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


# Pythons the dependencies force away from, with the reason; empty: none does (checked for
# 3.12 and 3.13: ai-edge-litert 2.3, onnxruntime, tensorflow 2.21, tflite-micro and
# ethos-u-vela 5.2 all publish cp312/cp313 wheels; tfmot 0.8.1 needs distutils on 3.12+, which
# the compress extra's setuptools provides there).
FORCED_UPPER_BOUNDS: dict[str, str] = {}


@pytest.mark.slow
def test_wheel_sets_no_python_upper_bound_the_dependencies_do_not_force(built_wheel):
    metadata = wheel_metadata(built_wheel)
    requires = metadata["Requires-Python"]
    uppers = [part.strip() for part in requires.split(",") if part.strip().startswith("<")]
    assert uppers == list(FORCED_UPPER_BOUNDS), (
        f"Requires-Python {requires!r} has an upper bound no dependency forces"
    )
    assert ">=3.10" in requires
    extras = set(metadata.get_all("Provides-Extra"))
    assert {"runtime", "mcu", "npu", "all"} <= extras
    needs = metadata.get_all("Requires-Dist")
    assert any(r.startswith("tflite-micro") and 'extra == "mcu"' in r for r in needs)
    assert any(r.startswith("ethos-u-vela") and 'extra == "npu"' in r for r in needs)
    all_extra = next(r for r in needs if 'extra == "all"' in r)
    assert "mcu" in all_extra and "npu" in all_extra


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_and_imports_every_package(built_wheel, tmp_path):
    wheel = built_wheel
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
        check=True,
        timeout=300,
    )
    # Dependencies come from this environment's site-packages, after the wheel's own files.
    Path(site, "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = (
        "import edgesmith, edgesmith.train, edgesmith.export, edgesmith.runtime, "
        "edgesmith.core.datasets, edgesmith.train.zoo, edgesmith.compress, edgesmith.devices, "
        "edgesmith.app.build, edgesmith.recipes\n"
        f"assert edgesmith.__file__.startswith({site!r}), edgesmith.__file__\n"
        "from edgesmith.core.datasets import load_dataset\n"
        "assert load_dataset('digits').x_train.shape == (1438, 8, 8, 1)\n"
        "from edgesmith.core.profiles import load_profile\n"
        "assert load_profile('mcu').budgets.max_size_kb == 100\n"
        "import tempfile; from edgesmith.core.pretrained import get\n"
        "folder = tempfile.mkdtemp()\n"
        "for fmt in ('keras', 'tflite-int8'):\n"
        "    get('resnet8-cifar10', folder + '/' + fmt, fmt)  # every shipped file, hash-checked\n"
        "print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
