"""The runtime-only install: its size on disk and the time of ``import edgesmith.runtime``.

Builds a fresh venv under /tmp with only what ``edgesmith[runtime]`` needs (numpy, pyyaml,
pillow, onnxruntime, ai-edge-litert, at the versions of the development venv), installs this
repository with ``pip install --no-deps``, then measures in that venv:

- site-packages size, total and the largest packages;
- ``import edgesmith.runtime`` (fresh process, median of 7), and import + load + predict of the
  committed int8 .tflite and .onnx fixtures (which imports the runtimes themselves);
- that TensorFlow is absent and that ``edgesmith bench`` runs there.

The venv is deleted afterwards.

    .venv/bin/python bench/runtime_install.py

Writes bench/out/runtime/install.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "runtime"
FIXTURES = ROOT / "tests" / "runtime" / "fixtures"
PACKAGES = ("numpy", "pyyaml", "pillow", "onnxruntime", "ai-edge-litert")

IMPORT = (
    "import time; t = time.perf_counter(); import edgesmith.runtime; print(time.perf_counter() - t)"
)
LOAD_PREDICT = """
import time, sys
t = time.perf_counter()
import numpy as np
import edgesmith.runtime as rt
for path in sys.argv[1:]:
    rt.load(path, threads=1).predict(np.zeros((1, 8, 8, 1), np.uint8))
print(time.perf_counter() - t)
heavy = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")]
assert not heavy, heavy
"""


def run(cmd: list[str], **kwargs) -> str:
    # Run from /tmp: ``python -c`` puts the working directory first on sys.path, and the
    # repository root holds an ``edgesmith/`` folder that would shadow the installed package.
    kwargs.setdefault("cwd", tempfile.gettempdir())
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return done.stdout


def median_seconds(python: str, code: str, *args: str, repeats: int = 7) -> float:
    values = sorted(float(run([python, "-c", code, *args]).strip()) for _ in range(repeats))
    return values[len(values) // 2]


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> int:
    pins = [f"{name}=={metadata.version(name)}" for name in PACKAGES]
    work = Path(tempfile.mkdtemp(prefix="edgesmith-runtime-venv-"))
    try:
        venv = work / "venv"
        started = time.perf_counter()
        run([sys.executable, "-m", "venv", str(venv)])
        python = str(venv / "bin" / "python")
        run([python, "-m", "pip", "install", "-q", *pins], timeout=1800)
        run([python, "-m", "pip", "install", "-q", "--no-deps", str(ROOT)], timeout=1800)
        install_s = time.perf_counter() - started
        site = Path(run([python, "-c", "import site; print(site.getsitepackages()[0])"]).strip())
        sizes = {}
        for child in site.iterdir():
            if child.is_dir() and not child.name.endswith((".dist-info", "__pycache__")):
                sizes[child.name] = tree_bytes(child)
        has_tf = run([python, "-c", "import importlib.util as u; print(u.find_spec('tensorflow'))"])
        # Warm the bytecode caches once, as any second start of an installed package would.
        run([python, "-c", "import edgesmith.runtime, onnxruntime, ai_edge_litert.interpreter"])
        bare = median_seconds(python, "import time; t = time.perf_counter(); print(0.0)")
        import_s = median_seconds(python, IMPORT)
        models = [str(FIXTURES / "int8.tflite"), str(FIXTURES / "raw.onnx")]
        load_predict_s = median_seconds(python, LOAD_PREDICT, *models)
        edgesmith = str(venv / "bin" / "edgesmith")
        bench_out = run(
            [edgesmith, "bench", models[0], "--data", "digits", "--min-runs", "100",
             "--min-seconds", "0.2", "--quiet"]
        )  # fmt: skip
        result = {
            "packages": pins,
            "install_seconds": install_s,
            "venv_bytes": tree_bytes(venv),
            "site_packages_bytes": tree_bytes(site),
            "largest": dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:8]),
            "tensorflow_installed": has_tf.strip() != "None",
            "import_edgesmith_runtime_s": import_s - bare,
            "import_load_predict_tflite_and_onnx_s": load_predict_s,
            "bench_ran": "top-1 %" in bench_out,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "install.json").write_text(json.dumps(result, indent=2) + "\n")
    mib = 2**20
    print(
        f"venv {result['venv_bytes'] / mib:.0f} MiB, site-packages "
        f"{result['site_packages_bytes'] / mib:.0f} MiB (installed in {install_s:.0f} s)"
    )
    for name, size in result["largest"].items():
        print(f"  {name:24s} {size / mib:7.1f} MiB")
    print(f"tensorflow installed: {result['tensorflow_installed']}")
    print(
        f"import edgesmith.runtime: {1000 * result['import_edgesmith_runtime_s']:.0f} ms "
        "(median of 7 fresh processes, interpreter start subtracted)"
    )
    print(
        f"import + load + predict (int8 .tflite and .onnx): "
        f"{1000 * result['import_load_predict_tflite_and_onnx_s']:.0f} ms"
    )
    print(f"edgesmith bench ran in the runtime-only venv: {result['bench_ran']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
