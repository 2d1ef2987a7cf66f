"""Benchmark the train stage on the full CIFAR-10: ResNet-8 (our recipe) beside the seed CNN.

Trains, on this machine and in one run, `resnet8` with edgesmith's default recipe and `seed_cnn`
the seed article's way (10 epochs, Adam 1e-3, batch 32, no augmentation), then prints a table,
writes JSON and a plot of eval accuracy against training time.

    EDGESMITH_DATA_DIR=DIR python bench/train_cifar10.py [--epochs 40]

DIR is the folder holding cifar10.npz: ``--data-dir``, else edgesmith's data folder
(``$EDGESMITH_DATA_DIR``, else ``~/.cache/edgesmith/datasets``).

With ``--backend jax`` (or torch, tensorflow) the same runs train with Keras 3. ``--recipe FILE``
instead trains every run of a run recipe (e.g. ``src/edgesmith/recipes/train/cifar10-best.yaml``:
a ResNet-20 teacher, then two distilled ResNet-8 students with erase and EMA), one row each;
re-running the same command resumes an interrupted run and skips finished ones:

    python bench/train_cifar10.py --data-dir DIR \
        --recipe src/edgesmith/recipes/train/cifar10-best.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder holding cifar10.npz (default: $EDGESMITH_DATA_DIR, else "
        "~/.cache/edgesmith/datasets)",
    )
    parser.add_argument(
        "--epochs", type=int, help="resnet8 epochs (default 40); with --recipe: every run's"
    )
    parser.add_argument("--seed-epochs", type=int, default=10, help="seed_cnn epochs")
    parser.add_argument("--seed", type=int, help="with --recipe: every run's random seed")
    parser.add_argument(
        "--runs", help="with --recipe: only these runs, A,B (and the teachers they name)"
    )
    parser.add_argument("--out", default=str(HERE / "out" / "train_cifar10"))
    parser.add_argument("--skip-seed", action="store_true", help="train resnet8 only")
    parser.add_argument(
        "--backend",
        default="tf_keras",
        choices=("tf_keras", "jax", "torch", "tensorflow"),
        help="tf_keras (default) or Keras 3 on that backend",
    )
    parser.add_argument("--recipe", help="a run recipe (YAML/JSON) to train instead of the rows")
    return parser.parse_args()


def trainer(backend: str):
    """The train function for a backend: the tf_keras trainer or the Keras 3 one."""
    if backend == "tf_keras":
        from edgesmith.train import train

        return train
    from edgesmith.train import train_keras3

    return train_keras3


def first_epoch_reaching(history: list[dict], target: float) -> dict | None:
    return next((h for h in history if h["eval_accuracy"] >= target), None)


def run(name: str, config, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.with_name(out.name + ".partial"), ignore_errors=True)
    started = time.perf_counter()
    artifact = trainer(config.backend)(config, out)
    return summarize(name, artifact, time.perf_counter() - started)


def summarize(name: str, artifact, wall: float) -> dict:
    history = artifact.manifest.history
    reach = first_epoch_reaching(history, 0.85)
    epoch_times = sorted(h["epoch_seconds"] for h in history)
    return {
        "name": name,
        "config": artifact.manifest.config,
        "accuracy": artifact.metrics.accuracy,
        "best_epoch_accuracy": max(h["eval_accuracy"] for h in history),
        "params": artifact.metrics.params,
        "macs": artifact.metrics.macs,
        "epochs": len(history),
        "wall_seconds": round(wall, 1),
        "median_epoch_seconds": epoch_times[len(epoch_times) // 2],
        "median_images_per_second": sorted(h["images_per_second"] for h in history)[
            len(history) // 2
        ],
        "first_85": None
        if reach is None
        else {
            "epoch": reach["epoch"],
            "train_seconds": reach["elapsed_train_seconds"],
            # the wall clock since fit began where recorded, else the sum of epoch times
            "wall_seconds": reach.get("elapsed_wall_seconds")
            or round(sum(h["epoch_seconds"] for h in history if h["epoch"] <= reach["epoch"]), 1),
        },
        "history": history,
        "artifact": str(artifact.path),
    }


def _with_seed(run, seed: int):
    return dataclasses.replace(run, settings={**run.settings, "seed": seed})


def run_recipe_rows(
    path: str, out: Path, epochs: int | None, seed: int | None, only: str | None = None
) -> list[dict]:
    """Train the runs of a run recipe into ``out/<recipe name>/<run name>``, one row each."""
    from edgesmith.core.errors import EdgesmithError
    from edgesmith.train.keras3_runs import load_run_recipe, run_recipe, select_runs

    planned = load_run_recipe(path, {"epochs": epochs} if epochs is not None else None)
    if seed is not None:  # students only: a teacher stays the one the recipe names
        teachers = {p.teacher_run for p in planned}
        planned = [p if p.name in teachers else _with_seed(p, seed) for p in planned]
    if only:
        try:
            planned = select_runs(planned, only)
        except EdgesmithError as exc:
            raise SystemExit(f"{path}: {exc}") from None
    backends = {p.settings.get("backend", "tf_keras") for p in planned}
    if len(backends) != 1:  # Keras 3's backend is fixed per process
        raise SystemExit(f"{path}: all runs must use one backend; found {sorted(backends)}")
    rows: list[dict] = []

    def done(run, artifact):
        wall = artifact.manifest.history[-1].get("elapsed_wall_seconds", 0.0)
        rows.append(summarize(run.name, artifact, wall))

    run_recipe(planned, out / Path(path).stem, trainer(backends.pop()), on_done=done)
    return rows


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for result in results:
        elapsed, acc = 0.0, []
        xs = []
        for h in result["history"]:
            elapsed += h["epoch_seconds"]
            xs.append(h.get("elapsed_wall_seconds", elapsed) / 60)
            acc.append(100 * h["eval_accuracy"])
        ax.plot(
            xs, acc, marker="o", markersize=3, label=f"{result['name']} ({result['accuracy']:.2%})"
        )
    ax.axhline(85, color="grey", linestyle="--", linewidth=1, label="MLPerf Tiny target 85%")
    ax.axhline(
        87.19,
        color="tab:red",
        linestyle=":",
        linewidth=1,
        label="MLCommons ResNet-8 (500 epochs) 87.19%",
    )
    ax.set_xlabel("training time on 2 CPU cores (minutes)")
    ax.set_ylabel("CIFAR-10 test accuracy (%)")
    ax.set_ylim(40, 92)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("edgesmith train on CIFAR-10 (10,000 test images)")
    fig.tight_layout()
    fig.savefig(path)


def main() -> int:
    args = parse_args()
    how = "pass --data-dir" if args.data_dir else "set EDGESMITH_DATA_DIR or pass --data-dir"
    if args.data_dir is None:  # at run time: $EDGESMITH_DATA_DIR as it is now
        from edgesmith.core.datasets.download import cache_dir

        args.data_dir = str(cache_dir())
    os.environ["EDGESMITH_DATA_DIR"] = args.data_dir
    if not (Path(args.data_dir) / "cifar10.npz").is_file():
        print(f"no cifar10.npz in {args.data_dir}: {how}", file=sys.stderr)
        return 2
    from edgesmith.core.versions import tool_versions
    from edgesmith.train import TrainConfig

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.recipe:
        results = run_recipe_rows(args.recipe, out, args.epochs, args.seed, args.runs)
    else:
        results = [
            run(
                "resnet8",
                TrainConfig(
                    data="cifar10", model="resnet8", epochs=args.epochs or 40, backend=args.backend
                ),
                out / "resnet8",
            )
        ]
    if not args.skip_seed and not args.recipe:
        article = TrainConfig(
            data="cifar10",
            model="seed_cnn",
            epochs=args.seed_epochs,
            batch_size=32,
            optimizer="adam",
            learning_rate=1e-3,
            schedule="constant",
            warmup_epochs=0.0,
            weight_decay=0.0,
            label_smoothing=0.0,
            augment="none",
            backend=args.backend,
        )
        results.append(run("seed_cnn (article recipe)", article, out / "seed_cnn"))
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "os": platform.platform(),
            "tools": tool_versions(),
        },
        "results": results,
    }
    (out / "train_cifar10.json").write_text(json.dumps(report, indent=1))
    plot(results, out / "train_cifar10.png")
    print(
        f"\n{'model':<26} {'acc':>7} {'params':>8} {'epochs':>6} {'s/epoch':>8} "
        f"{'img/s':>6} {'to 85%':>14} {'wall':>7}"
    )
    for r in results:
        reach = (
            f"ep {r['first_85']['epoch']}, {r['first_85']['wall_seconds'] / 60:.1f} min"
            if r["first_85"]
            else "not reached"
        )
        print(
            f"{r['name']:<26} {r['accuracy']:>7.2%} {r['params']:>8,} {r['epochs']:>6} "
            f"{r['median_epoch_seconds']:>8.1f} {r['median_images_per_second']:>6.0f} "
            f"{reach:>14} {r['wall_seconds'] / 60:>6.1f}m"
        )
    print("\nper-epoch eval accuracy:")
    for r in results:
        print(f"  {r['name']}: " + " ".join(f"{h['eval_accuracy']:.3f}" for h in r["history"]))
    print(f"\nwrote {out / 'train_cifar10.json'} and {out / 'train_cifar10.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
