"""The layers run one way: core <- stages <- app, and TensorFlow stays out of core and runtime.

Every import statement in the source tree is read with ``ast`` (function-level, lazy imports
included) and checked against the rules below, so a shortcut across the layers fails here before
it costs a later change. ``docs/ARCHITECTURE.md`` draws the same picture.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "src/edgesmith"

# every folder of the package is one layer (its name is the folder's); data folders hold no code
LAYERS = ("core", "tfkeras", "train", "runtime", "export", "compress", "app")
DATA_FOLDERS = ("devices", "pretrained", "recipes")
STAGES = ("tfkeras", "train", "runtime", "export", "compress")
# what each layer may import besides the core; the app may import anything
ALLOWED = {
    "core": set(),
    "tfkeras": set(),
    "runtime": set(),
    "train": {"tfkeras"},
    "export": {"tfkeras", "runtime"},
    "compress": {"tfkeras", "runtime", "export", "train"},
}
# stages reach each other through the package's public top level, never its modules; the shared
# tf_keras helpers are modules by design (each is one job: model_io, optimizer, pipeline, ...)
SUBMODULES_OPEN = {"tfkeras"}
TENSORFLOW = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tf2onnx")
# the core's third-party imports: the package's base dependencies and nothing else
CORE_THIRD_PARTY = {"numpy", "yaml", "PIL"}
# the package's own top level: ``import edgesmith`` (core only) and ``python -m edgesmith``
TOP_LEVEL = {"__init__.py": "core", "__main__.py": "app"}


def _layer_of(module: str) -> tuple[str, str | None] | None:
    """(layer, submodule) of an ``edgesmith...`` import, or None for third-party modules."""
    parts = module.split(".")
    if parts[0] != "edgesmith":
        return None
    if len(parts) == 1:
        return "core", None
    if parts[1] in LAYERS:
        return parts[1], ".".join(parts[2:]) or None
    return "core", None  # ``from edgesmith import __version__``


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) for every import in the file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def _sources(root: Path):
    package = root / PACKAGE
    for name, layer in TOP_LEVEL.items():
        yield f"{PACKAGE}/{name}", layer, package / name
    for layer in LAYERS:
        for path in sorted((package / layer).rglob("*.py")):
            yield path.relative_to(root).as_posix(), layer, path


def violations(root: Path = ROOT) -> list[str]:
    """Every import against the layer rules, as ``file:line: what``."""
    found = []
    for name, layer, path in _sources(root):
        for line, module, names in _imports(path):
            where = f"{name}:{line}"
            top = module.split(".")[0]
            if layer in ("core", "runtime") and top in TENSORFLOW:
                found.append(f"{where}: {layer} imports {module}")
            elif layer == "core" and top != "edgesmith" and top not in sys.stdlib_module_names:
                if top not in CORE_THIRD_PARTY:
                    found.append(f"{where}: core imports {module} (only numpy, PyYAML, Pillow)")
            target = _layer_of(module)
            if target is None or layer == "app":
                continue
            target_layer, submodule = target
            if target_layer in ("core", layer):
                continue
            if target_layer not in ALLOWED[layer]:
                found.append(f"{where}: {layer} imports {module} (layer {target_layer})")
            elif target_layer not in SUBMODULES_OPEN:
                reached = [submodule] if submodule else []
                reached += [
                    n for n in names if (root / PACKAGE / target_layer / f"{n}.py").is_file()
                ]  # `from edgesmith.train import zoo` reaches a module too
                if reached:
                    found.append(
                        f"{where}: {layer} reaches into {target_layer}'s module(s) "
                        f"{', '.join(reached)}; import from edgesmith.{target_layer}"
                    )
    return found


def test_imports_follow_the_layers():
    assert violations() == []


def _fake_package(tmp_path: Path) -> Path:
    package = tmp_path / "repo" / PACKAGE
    for layer in LAYERS:
        (package / layer).mkdir(parents=True)
    for name in TOP_LEVEL:
        (package / name).write_text("")
    return package


def test_every_folder_of_the_package_is_a_layer_or_data():
    folders = {p.name for p in (ROOT / PACKAGE).iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(LAYERS) | set(DATA_FOLDERS)
    for folder in DATA_FOLDERS:
        code = [p.name for p in (ROOT / PACKAGE / folder).rglob("*.py") if p.name != "__init__.py"]
        assert code == [], f"{folder}/ holds code: {code}"


@pytest.mark.parametrize(
    ("layer", "source", "expected"),
    [
        ("core", "from edgesmith.train import train", "core imports edgesmith.train"),
        ("runtime", "import tensorflow as tf", "runtime imports tensorflow"),
        ("runtime", "def f():\n    import tf_keras", "runtime imports tf_keras"),
        ("export", "from edgesmith.compress import prune", "layer compress"),
        ("compress", "from edgesmith.train.trainer import x", "reaches into train's module"),
        ("compress", "from edgesmith.train import zoo", "reaches into train's module(s) zoo"),
        ("runtime", "from edgesmith.app.cli import main", "layer app"),
        ("core", "import onnxruntime", "core imports onnxruntime"),
        ("core", "def f():\n    from ai_edge_litert import schema", "core imports ai_edge_litert"),
    ],
)
def test_the_check_catches_each_kind_of_breach(tmp_path, layer, source, expected):
    package = _fake_package(tmp_path)
    for module in ("zoo", "trainer"):
        (package / "train" / f"{module}.py").write_text("")
    (package / layer / "bad.py").write_text(source + "\n")
    fake_root = tmp_path / "repo"
    found = violations(fake_root)
    assert len(found) == 1 and expected in found[0], found


def test_allowed_imports_pass(tmp_path):
    package = _fake_package(tmp_path)
    fake_root = tmp_path / "repo"
    (package / "compress" / "ok.py").write_text(
        "from edgesmith.runtime import load\n"
        "from edgesmith.tfkeras.model_io import load_keras_model\n"
        "from edgesmith.core.errors import EdgesmithError\n"
        "def f():\n    import numpy\n"
    )
    (package / "core" / "ok.py").write_text("import json\nimport numpy\nimport yaml\n")
    (package / "app" / "ok.py").write_text("from edgesmith.train.trainer import train\n")
    assert violations(fake_root) == []
