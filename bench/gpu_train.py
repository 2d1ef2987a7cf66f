"""GPU check: train ResNet-8 on CIFAR-10 with Keras 3 on JAX; print time to 85% and images/s.

Runs on a bare CUDA machine that has JAX (with CUDA) and numpy, plus the files it is given: the
keras, namex and optree wheels (``pip install --no-deps --no-index wheels/*.whl``), this repository
(no ``pip install`` of edgesmith needed: ``src/`` goes on ``sys.path``) and CIFAR-10 as an .npz
(x_train, y_train, x_test, y_test). No TensorFlow, no network.

    python bench/gpu_train.py --data npz:/data/cifar10.npz --json-out gpu_train.json
    python bench/gpu_train.py --data npz:/data/cifar10.npz \
        --also src/edgesmith/recipes/train/cifar10-best.yaml --also-epochs 60 \
        --out runs-gpu --tar-out runs-gpu.tar.gz
    python bench/gpu_train.py --data npz:/data/cifar10.npz --out runs-gpu \
        --also src/edgesmith/recipes/train/cifar10-best.yaml --only resnet8-kd-seed1 &
    python bench/gpu_train.py --dry-run          # anywhere: digits, 2 epochs, CPU is fine

The main run trains ResNet-8 (batch 1024, mixed bfloat16, crop+flip, label smoothing 0.1,
normalisation and augmentation in the compiled step on the GPU), evaluates on all test images
after every epoch, and reports the wall time from the start of training (compilation included)
to the first epoch at or above ``--target``, and images/s after the first (compiling) epoch.
``--also RECIPE`` then trains each run of a run recipe (teacher first, distilled students after),
and every trained artifact (model.keras + manifest.json) lands under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bootstrap_edgesmith(root: Path = ROOT) -> None:
    """Make ``import edgesmith`` work from a source checkout without installing it (src layout)."""
    source = str(root / "src")
    if source not in sys.path:
        sys.path.insert(0, source)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="data spec, e.g. npz:/data/cifar10.npz")
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--epochs", type=int, default=20, help="main run epochs (default 20)")
    parser.add_argument("--batch-size", type=int, default=1024, dest="batch_size")
    parser.add_argument(
        "--precision",
        default="mixed_bfloat16",
        choices=("float32", "mixed_bfloat16", "mixed_float16"),
    )
    parser.add_argument("--augment", default="crop,flip")
    parser.add_argument("--target", type=float, default=0.85, help="accuracy to time (0.85)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--also", action="append", default=[], help="run recipe(s) to train too")
    parser.add_argument(
        "--skip-main",
        action="store_true",
        dest="skip_main",
        help="train only the --also runs (no main run, no time to --target)",
    )
    parser.add_argument(
        "--only",
        help="with --also: train only these runs, A,B (and the teachers they name; finished "
        "runs under --out are read back), so that students can train side by side",
    )
    parser.add_argument(
        "--also-epochs", type=int, dest="also_epochs", help="override every --also run's epochs"
    )
    parser.add_argument("--out", default="gpu-train-runs", help="folder for the artifacts")
    parser.add_argument("--json-out", dest="json_out", help="write the results as JSON here")
    parser.add_argument("--tar-out", dest="tar_out", help="also pack --out into this .tar.gz")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="tiny settings (digits, 2 epochs, batch 128, float32, --also runs 1 epoch)",
    )
    args = parser.parse_args(argv)
    if (args.only or args.skip_main) and not args.also:
        parser.error("--only and --skip-main choose among --also runs: give --also RECIPE")
    if args.dry_run:
        args.data = args.data or "digits"
        args.epochs, args.batch_size, args.precision = min(args.epochs, 2), 128, "float32"
        args.also_epochs = 1
    if not args.data:
        parser.error("--data is required (e.g. npz:/data/cifar10.npz), or --dry-run")
    return args


def summarize(name: str, artifact, target: float) -> dict:
    """Accuracy, time to ``target`` (wall clock since fit began) and images/s of one run."""
    manifest = artifact.manifest
    history = manifest.history
    reach = next((h for h in history if h["eval_accuracy"] >= target), None)
    steady = [h["images_per_second"] for h in history[1:]] or [history[0]["images_per_second"]]
    return {
        "name": name,
        "model": manifest.config["model"],
        "accuracy": manifest.metrics.accuracy,
        "best_epoch_accuracy": max(h["eval_accuracy"] for h in history),
        "epochs": len(history),
        "first_epoch_seconds": history[0]["epoch_seconds"],
        "median_epoch_seconds": sorted(h["epoch_seconds"] for h in history)[len(history) // 2],
        "images_per_second_after_compile": sorted(steady)[len(steady) // 2],
        "wall_seconds": history[-1]["elapsed_wall_seconds"],
        "target": target,
        "time_to_target_seconds": None if reach is None else reach["elapsed_wall_seconds"],
        "epoch_reaching_target": None if reach is None else reach["epoch"],
        "training": manifest.training.to_dict() if manifest.training else None,
        "config": manifest.config,
        "eval_accuracy_per_epoch": [h["eval_accuracy"] for h in history],
        "artifact": str(artifact.path),
    }


def _line(result: dict) -> str:
    reach = (
        f"{result['time_to_target_seconds']:.1f} s (epoch {result['epoch_reaching_target']})"
        if result["time_to_target_seconds"] is not None
        else "not reached"
    )
    return (
        f"{result['name']}: accuracy {result['accuracy']:.4f} after {result['epochs']} epochs; "
        f"time to {result['target']:.0%}: {reach}; "
        f"{result['images_per_second_after_compile']:,.0f} img/s after compile; "
        f"first epoch {result['first_epoch_seconds']:.1f} s; wall {result['wall_seconds']:.1f} s"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import edgesmith.train  # noqa: F401  (installed, or on sys.path)
    except ImportError:
        bootstrap_edgesmith()
    from edgesmith.core.errors import EdgesmithError
    from edgesmith.train import TrainConfig, train_keras3
    from edgesmith.train.keras3_runs import load_run_recipe, run_recipe, select_runs

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    main_dir = out / f"main-{args.model}"
    results: dict = {"machine": {"python": platform.python_version(), "host": platform.node()}}
    started = time.perf_counter()
    try:
        config = TrainConfig(
            data=args.data,
            model=args.model,
            epochs=args.epochs,
            batch_size=args.batch_size,
            precision=args.precision,
            augment=args.augment,
            seed=args.seed,
            backend="jax",
        )
        if not args.skip_main:
            if not (main_dir / "manifest.json").is_file():
                partial = main_dir.with_name(main_dir.name + ".partial")
                train_keras3(config, main_dir, resume=partial.is_dir())
            from edgesmith.core.artifacts import read_artifact

            main_result = summarize(f"main {args.model}", read_artifact(main_dir), args.target)
            results["main"] = main_result
            results["machine"]["devices"] = (main_result["training"] or {}).get("devices")
            print(_line(main_result), flush=True)
        extra = []
        for recipe in args.also:
            overrides = {"data": args.data, "backend": "jax", "precision": args.precision}
            if args.also_epochs:
                overrides["epochs"] = args.also_epochs
            if args.dry_run:
                overrides["batch_size"] = args.batch_size
            planned = load_run_recipe(recipe, overrides)
            if args.only:
                planned = select_runs(planned, args.only)

            def done(run, artifact, recipe=recipe):
                result = summarize(run.name, artifact, args.target)
                result["recipe"] = str(recipe)
                extra.append(result)
                print(_line(result), flush=True)

            run_recipe(planned, out / Path(recipe).stem, train_keras3, on_done=done)
        results["also"] = extra
    except EdgesmithError as exc:
        print(f"gpu_train: {exc}", file=sys.stderr)
        return 2
    results["total_wall_seconds"] = round(time.perf_counter() - started, 1)
    print(f"total wall time {results['total_wall_seconds']:.1f} s", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json_out}")
    if args.tar_out:
        with tarfile.open(args.tar_out, "w:gz") as tar:
            for path in sorted(out.rglob("*")):
                if path.is_file() and ".partial" not in str(path):
                    tar.add(path, arcname=str(path.relative_to(out.parent)))
        print(f"packed {out} into {args.tar_out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
