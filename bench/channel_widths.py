"""Channel-pruning widths vs int8 latency and file size: which thinner ResNet-8 is really faster.

Halving the MACs of a small int8 CNN does not halve its latency: XNNPACK's int8 kernels work on
tiles of output channels, so a layer pruned to 11 channels costs what 16 would, and each op has a
fixed cost. This sweep rebuilds the trained ResNet-8 at several channel fractions and
``round_to`` multiples (``edgesmith.compress.channel_pruning``, weights sliced in, no
fine-tuning: latency and size do not depend on the weights' values), converts each to a full-int8
.tflite with ``edgesmith.export.tflite.convert`` and measures them all interleaved, batch 1, one
thread, with ``edgesmith.runtime.benchmark``. It picks the ``--mac-reduction``/``--round-to``
settings the compress benchmark uses.

    EDGESMITH_DATA_DIR=DIR .venv/bin/python bench/channel_widths.py \\
        --from bench/out/train_cifar10/resnet8

DIR is edgesmith's data folder holding cifar10.npz (``$EDGESMITH_DATA_DIR``, else
``~/.cache/edgesmith/datasets``; edgesmith downloads the file there once if it is missing).

Prints a Markdown table and writes bench/out/channel_widths/results.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "out" / "channel_widths"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="trained Keras artifact")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument(
        "--mac-reductions", default="0.5,0.55,0.6,0.65", help="comma list of MAC reductions"
    )
    parser.add_argument("--round-to", default="1,8,16", help="comma list of channel multiples")
    parser.add_argument(
        "--widths",
        action="append",
        default=[],
        metavar="LAYER=N,...",
        help="an explicit width setting (as `compress prune --widths`); repeat for more",
    )
    parser.add_argument("--min-seconds", type=float, default=2.0, help="timing per model")
    return parser.parse_args()


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> int:
    args = parse_args()
    from edgesmith.compress import channel_pruning, finetune
    from edgesmith.compress.config import ChannelPruneConfig
    from edgesmith.core.widths import parse_widths
    from edgesmith.export.tflite import convert
    from edgesmith.runtime import BenchConfig, TimingPlan, benchmark
    from edgesmith.tfkeras.model_stats import count_macs, count_params

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    src = finetune.load_source(args.source)
    calibration = src.norm.apply(src.dataset.x_train[:200])
    variants: list[dict] = [{"name": "dense", "model": src.model, "settings": None}]
    for i, text in enumerate(args.widths):
        config = ChannelPruneConfig(widths=parse_widths(text))
        plan, _ = channel_pruning.plan_for(src.model, config)
        variants.append(
            {
                "name": f"widths-{i + 1}",
                "model": channel_pruning.rebuild(src.model, plan),
                "settings": {"widths": config.widths},
                "widths": [after for _, after in plan.summary().values()],
            }
        )
    for reduction in [float(v) for v in args.mac_reductions.split(",") if v]:
        for round_to in [int(v) for v in args.round_to.split(",")]:
            config = ChannelPruneConfig(mac_reduction=reduction, round_to=round_to)
            try:
                plan, fraction = channel_pruning.plan_for(src.model, config)
            except Exception as exc:  # an unreachable target at this multiple: skip it
                say(f"skip mac_reduction {reduction} round_to {round_to}: {exc}")
                continue
            thin = channel_pruning.rebuild(src.model, plan)
            widths = [after for _, after in plan.summary().values()]
            variants.append(
                {
                    "name": f"macs-{reduction:.2f}-r{round_to}",
                    "model": thin,
                    "settings": {"mac_reduction": reduction, "round_to": round_to},
                    "widths": widths,
                }
            )
    paths = []
    for v in variants:
        path = out / f"{v['name']}.tflite"
        say(f"converting {v['name']} ({v.get('widths') or 'dense'})")
        path.write_bytes(convert(v["model"], "int8", calibration=calibration))
        v["path"] = str(path)
        v["macs"] = count_macs(v["model"])
        v["params"] = count_params(v["model"])
        v["size_bytes"] = path.stat().st_size
        paths.append(path)
        say(f"{v['name']}: {v['macs'] / 1e6:.2f} M MACs, {v['size_bytes']:,} B")
    run = benchmark(
        paths,
        config=BenchConfig(threads=1, batch=1, timing=TimingPlan(min_seconds=args.min_seconds)),
        report=say,
    )
    dense = variants[0]
    dense_p50 = run.results[0].latency.p50
    rows = []
    for v, result in zip(variants, run.results, strict=True):
        p50 = result.latency.p50
        rows.append(
            {
                "name": v["name"],
                "settings": v["settings"],
                "widths": v.get("widths"),
                "macs": v["macs"],
                "mac_ratio": v["macs"] / dense["macs"],
                "params": v["params"],
                "size_bytes": v["size_bytes"],
                "size_ratio": v["size_bytes"] / dense["size_bytes"],
                "p50_ms": p50,
                "latency_ratio": p50 / dense_p50,
            }
        )
    document = {
        "command": " ".join(sys.argv),
        "machine": {"processor": platform.processor(), "python": platform.python_version()},
        "rows": rows,
    }
    (out / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    print(
        "| variant | widths (groups) | MACs | MACs vs dense | raw B | raw vs dense | p50 ms "
        "| p50 vs dense |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        widths = ",".join(str(w) for w in r["widths"]) if r["widths"] else "-"
        print(
            f"| {r['name']} | {widths} | {r['macs'] / 1e6:.2f} M | {r['mac_ratio']:.1%} | "
            f"{r['size_bytes']:,} | {r['size_ratio']:.1%} | {r['p50_ms']:.4f} | "
            f"{r['latency_ratio']:.3f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
