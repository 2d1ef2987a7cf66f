"""The install extras: the GPU set mirrors `all` with NVIDIA flavours, and never both runtimes."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def resolve(extra: str) -> set[str]:
    """Requirement names of an extra, following edgesmith[...] self-references."""
    names = set()
    for requirement in EXTRAS[extra]:
        own = re.fullmatch(r"edgesmith\[(.+)\]", requirement)
        if own:
            for part in own.group(1).split(","):
                names |= resolve(part.strip())
        else:
            names.add(re.split(r"[<>=!~;]", requirement)[0].strip())
    return names


def test_gpu_extra_is_all_with_nvidia_flavours():
    flavours = {"tensorflow": "tensorflow[and-cuda]", "onnxruntime": "onnxruntime-gpu"}
    expected = {flavours.get(name, name) for name in resolve("all")}
    assert resolve("gpu") == expected


def test_no_extra_installs_both_onnxruntime_flavours():
    for extra in EXTRAS:
        names = resolve(extra)
        assert not {"onnxruntime", "onnxruntime-gpu"} <= names, extra


def test_runtime_extra_has_no_tensorflow():
    assert not any(
        name.startswith(("tensorflow", "tf-keras", "tf2onnx")) for name in resolve("runtime")
    )


def test_tensorflow_and_tf_keras_pinned_to_the_same_minor():
    pins = {}
    for requirement in EXTRAS["train"]:
        name, spec = re.match(r"([\w\-\[\]]+)(.*)", requirement).groups()
        pins[name] = spec
    assert pins["tensorflow"] == pins["tf-keras"] == ">=2.21,<2.22"
