"""Put GPU-trained CIFAR-10 artifacts and their int8 exports into the package's pretrained zoo.

For each ``--entry NAME=TRAIN_ARTIFACT,EXPORT_ARTIFACT`` (the train artifact that
``bench/gpu_zoo.sh`` wrote, and the ``tflite-int8`` artifact ``edgesmith export`` made from it)
this copies both artifacts into ``src/edgesmith/pretrained/NAME/{keras,tflite-int8}`` (manifest,
model and history; no ownership ledger, no logs), with the data spec of the train machine
(``npz:/tmp/...``) replaced by ``cifar10`` so that a user's stages find the same data by name
(the dataset fingerprint stays: it is of the arrays, not of the path). It measures the int8 file
with edgesmith's runtime on MLPerf Tiny's 200 evaluation images and writes
``src/edgesmith/pretrained/index.json``, and ``tests/data/cifar10-mlperf200.npz`` (those 200
images and labels: the sample the zoo's test measures the shipped files on).

    EDGESMITH_DATA_DIR=DIR .venv/bin/python bench/zoo_pack.py \\
        --entry resnet8-cifar10=runs/gpu/resnet8-kd-seed0,runs/export/seed0/tflite-int8 \\
        --made made.json

``--made`` is a JSON object of ``{NAME: {...}}`` saying how each entry was made (recipe, run,
command, machine); the train manifest adds epochs, seed, wall time and accuracy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "src" / "edgesmith" / "pretrained"
SAMPLE = ROOT / "tests" / "data" / "cifar10-mlperf200.npz"
DESCRIPTIONS = {
    "resnet8-cifar10": "MLPerf Tiny's ResNet-8 (78,666 params, 12.50 M MACs), distilled from a "
    "ResNet-20 on CIFAR-10",
    "resnet8-thin-cifar10": "a thin ResNet-8 (45,498 params, 7.18 M MACs: 57% of the dense), "
    "distilled from the same ResNet-20",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_artifact(source: Path, target: Path, data_spec: str, name: str) -> dict[str, str]:
    """Copy an artifact's hashed files and manifest; return {file: sha256}.

    Paths of the machines that made it (the GPU machine's teacher folder, the export's source
    folder) become what they name for a user: the recipe's teacher run, the zoo entry.
    """
    manifest = json.loads((source / "manifest.json").read_text())
    if manifest["config"].get("teacher"):
        manifest["config"]["teacher"] = "@teacher-resnet20"  # cifar10-best.yaml's run, not shipped
    if "source" in manifest["config"]:
        manifest["config"]["source"] = f"zoo:{name}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in manifest["files"]:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target / name)
    if "data" in manifest["config"]:
        manifest["config"]["data"] = data_spec
    manifest["dataset"]["spec"] = data_spec
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return {name: sha256(target / name) for name in (*manifest["files"], "manifest.json")}


def mlperf_accuracy(model_file: Path) -> tuple[float, int]:
    """Top-1 of an exported file on MLPerf Tiny's 200 images (edgesmith's runtime, 1 thread)."""
    from edgesmith.runtime import evaluate, load

    with np.load(SAMPLE) as sample:
        x, y = sample["x"], sample["y"]
    model = load(model_file, threads=1)
    try:
        result = evaluate(model, x, y)
    finally:
        model.close()
    return float(result["accuracy"]), int(round(result["accuracy"] * len(y)))


def write_sample() -> None:
    from edgesmith.core.datasets import load_dataset

    data = load_dataset("cifar10?subset=mlperf")
    SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(SAMPLE, x=data.x_eval, y=data.y_eval)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entry", action="append", required=True, metavar="NAME=TRAIN,EXPORT")
    parser.add_argument("--made", required=True, metavar="JSON", help="how each entry was made")
    args = parser.parse_args()
    made_all = json.loads(Path(args.made).read_text())
    write_sample()
    entries = []
    for item in args.entry:
        name, _, paths = item.partition("=")
        train_dir, _, export_dir = paths.partition(",")
        train_dir, export_dir = Path(train_dir), Path(export_dir)
        if name not in made_all or not (train_dir / "manifest.json").is_file():
            print(
                f"--entry {item!r}: expected NAME=TRAIN,EXPORT with NAME in --made", file=sys.stderr
            )
            return 2
        keras_hashes = copy_artifact(train_dir, ZOO / name / "keras", "cifar10", name)
        int8_hashes = copy_artifact(export_dir, ZOO / name / "tflite-int8", "cifar10", name)
        train = json.loads((train_dir / "manifest.json").read_text())
        export = json.loads((export_dir / "manifest.json").read_text())
        accuracy200, correct200 = mlperf_accuracy(ZOO / name / "tflite-int8" / "model.tflite")
        history = train["history"]
        entries.append(
            {
                "name": name,
                "description": DESCRIPTIONS[name],
                "artifacts": {
                    "keras": {"folder": f"{name}/keras", "sha256": keras_hashes},
                    "tflite-int8": {"folder": f"{name}/tflite-int8", "sha256": int8_hashes},
                },
                "made": {
                    **made_all[name],
                    "model": train["config"]["model"],
                    "widths": train["config"].get("widths"),
                    "seed": train["config"]["seed"],
                    "epochs": train["config"]["epochs"],
                    "training": train.get("training"),
                    "wall_seconds": history[-1]["elapsed_wall_seconds"],
                    "tool_versions": train["tool_versions"],
                },
                "measured": {
                    "params": train["metrics"]["params"],
                    "macs": train["metrics"]["macs"],
                    "keras_accuracy_cifar10_test": train["metrics"]["accuracy"],
                    "int8_accuracy_cifar10_test": export["metrics"]["accuracy"],
                    "int8_agreement_with_keras": export["metrics"]["agreement"],
                    "int8_accuracy_mlperf200": accuracy200,
                    "int8_correct_mlperf200": correct200,
                    "int8_bytes": (ZOO / name / "tflite-int8" / "model.tflite").stat().st_size,
                },
            }
        )
        print(f"{name}: int8 {export['metrics']['accuracy']:.4f} (10,000), {accuracy200:.3f} (200)")
    (ZOO / "index.json").write_text(json.dumps({"entries": entries}, indent=1) + "\n")
    print(f"wrote {ZOO / 'index.json'} and {SAMPLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
