"""Plot test accuracy against training time for Keras 3 runs (bench/gpu_train.py's artifacts).

Each artifact's ``history.json`` holds per-epoch test accuracy and the wall clock since fit
began (compilation included), so curves of different recipes and models share one x axis.

    python bench/plot_gpu_train.py runs/gpu/main-resnet8 runs/gpu/r_seed0/teacher-resnet20 \
        runs/gpu/r_seed0/resnet8-kd-seed0 runs/gpu/r_seed1/resnet8-kd-seed1 \
        --reference 86.97 --out docs/gpu_train_cifar10.png

Also for CPU runs (issue 17's lever table): ``--title`` and ``--ylim 40,90``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def curve(artifact: Path) -> tuple[str, list[float], list[float]]:
    """(label, wall seconds, test accuracy %) of one artifact's history."""
    history = json.loads((artifact / "history.json").read_text())
    from edgesmith.core.artifacts import read_artifact

    config = read_artifact(artifact, verify=False).manifest.config
    extras = [
        word
        for word, present in (
            ("erase", "erase" in str(config.get("augment"))),
            (f"EMA {config.get('ema')}", bool(config.get("ema"))),
            ("KD", bool(config.get("teacher"))),
        )
        if present
    ]
    label = f"{artifact.name}: {config['model']}, {len(history)} ep" + (
        f" ({', '.join(extras)})" if extras else ""
    )
    seconds = [h["elapsed_wall_seconds"] for h in history]
    accuracy = [100 * h["eval_accuracy"] for h in history]
    return label, seconds, accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="+", type=Path)
    parser.add_argument("--reference", type=float, help="a horizontal line (e.g. MLCommons int8)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--title", default="Keras 3 on JAX, one H200, mixed bfloat16 (Keras model, before int8)"
    )
    parser.add_argument("--ylim", default="70,95", help="LOW,HIGH test accuracy (%%)")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.8))
    for artifact in args.artifacts:
        label, seconds, accuracy = curve(artifact)
        axes.plot(seconds, accuracy, label=label, linewidth=1.2)
    if args.reference is not None:
        axes.axhline(args.reference, color="grey", linestyle="--", linewidth=1)
        axes.annotate(
            f"MLCommons ResNet-8 int8: {args.reference:.2f}%",
            (0, args.reference),
            textcoords="offset points",
            xytext=(4, 4),
            color="grey",
            fontsize=8,
        )
    low, high = (float(v) for v in args.ylim.split(","))
    axes.set_ylim(low, high)
    axes.set_xlabel("wall seconds since training began (compilation included)")
    axes.set_ylabel("CIFAR-10 test accuracy (%), per epoch")
    axes.set_title(args.title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
