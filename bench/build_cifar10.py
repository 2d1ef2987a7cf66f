"""edgesmith build on CIFAR-10 from the trained ResNet-8: wall time, choice, candidates table.

    EDGESMITH_DATA_DIR=DIR .venv/bin/python bench/build_cifar10.py \
        [--device cpu-x86] [--qat-epochs 1] [--prune-epochs 1]

DIR is edgesmith's data folder holding cifar10.npz (``$EDGESMITH_DATA_DIR``, else
``~/.cache/edgesmith/datasets``; edgesmith downloads the file there once if it is missing).

Starts from bench/out/train_cifar10/resnet8 (bench/train_cifar10.py), so no training; the
candidates' fine-tuning is kept to a few epochs (about 45 s each on 2 cores). Prints a Markdown
section for bench/RESULTS.md and writes bench/out/build_cifar10/<device>/ (work, bundle).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu-x86")
    parser.add_argument("--source", default=str(ROOT / "bench/out/train_cifar10/resnet8"))
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--prune-epochs", type=int, default=1)
    parser.add_argument("--no-prune", action="store_true", help="dense and QAT candidates only")
    parser.add_argument("--min-runs", type=int, default=300)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    args = parser.parse_args()
    out = ROOT / "bench/out/build_cifar10" / args.device
    out.mkdir(parents=True, exist_ok=True)
    candidates = [{"name": "dense", "steps": []}]
    if not args.no_prune:
        candidates.append(
            {
                "name": "channels50",
                "steps": [
                    {
                        "prune": {
                            "sparsity": 0.5,
                            "structure": "channels",
                            "epochs": args.prune_epochs,
                        }
                    }
                ],
            }
        )
    candidates.append({"name": "qat", "steps": [{"qat": {"epochs": args.qat_epochs}}]})
    recipe = out / "recipe.json"
    recipe.write_text(json.dumps({"candidates": candidates}, indent=2) + "\n")
    command = [
        sys.executable, "-m", "edgesmith", "build", "--device", args.device, "--data", "cifar10",
        "--from", args.source, "--recipe", str(recipe), "--out", str(out),
        "--min-runs", str(args.min_runs), "--min-seconds", str(args.min_seconds),
    ]  # fmt: skip
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    (out / "stderr.log").write_text(run.stderr)
    print(f"`{' '.join(command[2:])}`: exit {run.returncode}, wall time {seconds:.0f} s\n")
    print("```\n" + run.stdout.rstrip() + "\n```")
    if run.returncode not in (0, 1):
        print(run.stderr[-2000:], file=sys.stderr)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
