"""Compression benchmark on CIFAR-10: each technique on a trained ResNet-8, as int8 .tflite.

Starting from the foundation benchmark's ResNet-8, runs 75% unstructured pruning, 2:4 sparsity,
channel pruning to half the MACs, QAT (beside plain PTQ), distillation (a resnet8 student from the
teacher vs the same student trained alone, same epochs and seed) and the accuracy budget; exports
each result to ``tflite-int8`` with ``edgesmith.export`` and reports the *exported file's*
accuracy on the 10,000 test images, its size raw and gzipped, MACs, and (dense vs channel-pruned)
the batch-1, 1-thread latency measured by ``edgesmith.runtime``.

    EDGESMITH_DATA_DIR=DIR .venv/bin/python bench/compress_cifar10.py \\
        --from bench/out/train_cifar10/resnet8 [--only dense,prune75] [--fresh]

DIR is edgesmith's data folder holding cifar10.npz (``$EDGESMITH_DATA_DIR``, else
``~/.cache/edgesmith/datasets``; edgesmith downloads the file there once if it is missing).

Results accumulate in bench/out/compress_cifar10/results.json (steps can run separately) and a
Markdown table is printed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "out" / "compress_cifar10"
STEPS = ("dense", "prune75", "prune24", "channels50", "qat", "distill", "budget")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="trained Keras artifact")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--only", default=",".join(STEPS), help=f"steps: {','.join(STEPS)}")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument("--prune-epochs", type=int, default=8)
    parser.add_argument("--prune24-epochs", type=int, default=6)
    parser.add_argument("--channel-epochs", type=int, default=10)
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--distill-epochs", type=int, default=10)
    parser.add_argument("--budget", type=float, default=0.5, help="--max-accuracy-drop points")
    parser.add_argument(
        "--self-distill",
        action="store_true",
        help="pruning steps fine-tune with the dense source as --teacher",
    )
    parser.add_argument("--channel-mac-reduction", type=float, default=0.5)
    parser.add_argument("--channel-round-to", type=int, default=1)
    parser.add_argument(
        "--channel-widths",
        metavar="LAYER=N,...",
        help="exact widths for the channel step (compress prune --widths) instead of the MAC "
        "target; the MAC reduction is in the results",
    )
    parser.add_argument("--channel-lr", type=float, help="peak learning rate of the channel step")
    parser.add_argument(
        "--channel-weight-decay", type=float, help="weight decay of the channel step (0.0025)"
    )
    return parser.parse_args()


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(path.with_name(path.name + ".partial"), ignore_errors=True)
    return path


def export_int8(keras_dir: Path, out: Path) -> dict:
    from edgesmith.core.errors import CheckFailed
    from edgesmith.export import export

    try:
        (artifact,) = export(keras_dir, "tflite-int8", fresh_dir(out), report=say)
        parity = "pass"
    except CheckFailed as exc:  # report the file anyway, marked, as --allow-mismatch would
        say(f"parity failed ({exc}); exporting again with allow_mismatch to report it")
        (artifact,) = export(
            keras_dir, "tflite-int8", fresh_dir(out), report=say, allow_mismatch=True
        )
        parity = "fail"
    metrics = artifact.metrics
    return {
        "int8_path": str(artifact.model_path),
        "int8_accuracy": metrics.accuracy,
        "int8_agreement": metrics.agreement,
        "int8_parity": parity,
        "size_bytes": metrics.size_bytes,
        "gzip_bytes": metrics.gzip_bytes,
    }


def row(name: str, keras_artifact, int8: dict, seconds: float, command: str) -> dict:
    metrics = keras_artifact.metrics
    return {
        "name": name,
        "technique": keras_artifact.technique,
        "keras_path": str(keras_artifact.path),
        "keras_accuracy": metrics.accuracy,
        "macs": metrics.macs,
        "params": metrics.params,
        "sparsity": metrics.sparsity,
        "seconds": round(seconds, 1),
        "command": command,
        **int8,
    }


def latency(paths: list[str]) -> list[float]:
    from edgesmith.runtime import BenchConfig, benchmark

    run = benchmark(paths, config=BenchConfig(threads=1, batch=1), report=say)
    return [r.latency.p50 for r in run.results]


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def main() -> int:
    args = parse_args()
    steps = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        say(f"unknown step(s) {unknown}; expected {STEPS}")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = (
        {} if args.fresh or not results_path.is_file() else json.loads(results_path.read_text())
    )
    results.setdefault("rows", {})
    results["machine"] = machine()
    results["source"] = str(Path(args.source).resolve())

    from edgesmith.compress import distill, prune, qat
    from edgesmith.compress.config import ChannelPruneConfig, DistillConfig, PruneConfig, QatConfig
    from edgesmith.core.artifacts import read_artifact

    source = read_artifact(args.source)
    results["source_accuracy"] = source.metrics.accuracy

    def save() -> None:
        results_path.write_text(json.dumps(results, indent=1))

    def record(name: str, artifact, seconds: float, command: str) -> dict:
        entry = row(
            name, artifact, export_int8(artifact.path, out / f"{name}-export"), seconds, command
        )
        results["rows"][name] = entry
        save()
        say(f"== {name}: {json.dumps(entry)}")
        return entry

    def timed(name: str, command: str, make) -> dict:
        """Run ``make(folder)`` into a fresh ``out/name``; record its artifact and seconds."""
        started = time.perf_counter()
        artifact = make(fresh_dir(out / name))
        return record(name, artifact, time.perf_counter() - started, command)

    src = args.source
    if "dense" in steps:
        record("dense", source, 0.0, f"edgesmith export --from {src} --format tflite-int8")
    teacher = {"teacher": src} if args.self_distill else {}
    teacher_flag = f" --teacher {src}" if args.self_distill else ""
    mac, round_to = args.channel_mac_reduction, args.channel_round_to
    if args.channel_widths:
        channel_shape = {"widths": args.channel_widths}
        channel_flags = f"--widths {args.channel_widths}"
    else:
        channel_shape = {"mac_reduction": mac, "round_to": round_to}
        channel_flags = f"--mac-reduction {mac} --round-to {round_to}"
    if args.channel_lr:
        channel_shape["learning_rate"] = args.channel_lr
        channel_flags += f" --lr {args.channel_lr}"
    if args.channel_weight_decay is not None:
        channel_shape["weight_decay"] = args.channel_weight_decay
        channel_flags += f" --weight-decay {args.channel_weight_decay}"
    for name, config, command in (
        (
            "prune75",
            PruneConfig(sparsity=0.75, epochs=args.prune_epochs, **teacher),
            f"edgesmith compress prune --from {src} --sparsity 0.75 --epochs {args.prune_epochs}"
            + teacher_flag,
        ),
        (
            "prune24",
            PruneConfig(structure="2:4", epochs=args.prune24_epochs, **teacher),
            f"edgesmith compress prune --from {src} --structure 2:4 --epochs {args.prune24_epochs}"
            + teacher_flag,
        ),
        (
            "channels50",
            ChannelPruneConfig(epochs=args.channel_epochs, **channel_shape, **teacher),
            f"edgesmith compress prune --from {src} --structure channels {channel_flags} "
            f"--epochs {args.channel_epochs}" + teacher_flag,
        ),
    ):
        if name in steps:
            timed(name, command, functools.partial(prune, src, config, report=say))
    if "channels50" in steps or "dense" in steps:
        rows = results["rows"]
        if "dense" in rows and "channels50" in rows:
            dense_ms, thin_ms = latency(
                [rows["dense"]["int8_path"], rows["channels50"]["int8_path"]]
            )
            rows["dense"]["latency_ms_p50"] = dense_ms
            rows["channels50"]["latency_ms_p50"] = thin_ms
            results["channel_latency_ratio"] = round(thin_ms / dense_ms, 4)
            save()
    if "qat" in steps:
        timed(
            "qat",
            f"edgesmith compress qat --from {src} --epochs {args.qat_epochs}",
            functools.partial(qat, src, QatConfig(epochs=args.qat_epochs), report=say),
        )
    if "distill" in steps:
        from edgesmith.train import TrainConfig, train

        epochs = args.distill_epochs
        timed(
            "student_alone",
            f"edgesmith train --data cifar10 --model resnet8 --epochs {epochs} --seed 0",
            functools.partial(
                train,
                TrainConfig(data="cifar10", model="resnet8", epochs=epochs, seed=0),
                report=say,
            ),
        )
        timed(
            "student_distilled",
            f"edgesmith compress distill --teacher {src} --student resnet8 --epochs {epochs} "
            "--seed 0",
            functools.partial(
                distill, src, DistillConfig(student="resnet8", epochs=epochs, seed=0), report=say
            ),
        )
    if "budget" in steps:
        from edgesmith.compress.autotune import quantize_within_budget
        from edgesmith.compress.config import AutotuneConfig

        started = time.perf_counter()
        outcome = quantize_within_budget(
            src,
            AutotuneConfig(max_accuracy_drop=args.budget, qat=QatConfig(epochs=args.qat_epochs)),
            fresh_dir(out / "budget"),
            report=say,
        )
        summary = json.loads((out / "budget" / "autotune.json").read_text())
        results["budget"] = {
            "max_accuracy_drop": args.budget,
            "attempts": summary["attempts"],
            "chosen": summary["chosen"],
            "chosen_path": str(outcome.path),
            "met": summary["met"],
            "seconds": round(time.perf_counter() - started, 1),
            "command": f"edgesmith compress quantize --from {src} --max-accuracy-drop "
            f"{args.budget} --epochs {args.qat_epochs}",
        }
        save()
    print(table(results))
    return 0


def table(results: dict) -> str:
    rows = results["rows"]
    dense = rows.get("dense")
    lines = [
        "| model | Keras acc | int8 .tflite acc | drop vs dense int8 | raw B | gzip B | "
        "gzip vs dense raw | gzip vs dense gzip | MACs | p50 ms (1 thr) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        drop = f"{100 * (dense['int8_accuracy'] - r['int8_accuracy']):+.2f}" if dense else "-"
        gz_raw = f"{r['gzip_bytes'] / dense['size_bytes']:.1%}" if dense else "-"
        gz = f"{r['gzip_bytes'] / dense['gzip_bytes']:.1%}" if dense else "-"
        ms = f"{r['latency_ms_p50']:.4f}" if "latency_ms_p50" in r else "-"
        lines.append(
            f"| {name} | {r['keras_accuracy']:.4f} | {r['int8_accuracy']:.4f} | {drop} | "
            f"{r['size_bytes']:,} | {r['gzip_bytes']:,} | {gz_raw} | {gz} | "
            f"{r['macs'] / 1e6:.2f} M | {ms} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
