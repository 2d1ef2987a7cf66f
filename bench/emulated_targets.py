"""Accuracy on the CPUs this machine is not, and the instruction count beside it.

Each model file is benched natively and on every emulated target edgesmith knows
(``edgesmith bench --emulate``: the same runner in a child Python under qemu-user), on the same
eval images, and counted under callgrind on this machine (``--measure instructions``). The
table gives each file's accuracy per CPU and its difference from native; emulated runs give
the target's numerics, never its time, so no latency is printed for them.

    EDGESMITH_DATA_DIR=/path/with/cifar10.npz .venv/bin/python bench/emulated_targets.py \\
        MODEL.tflite|MODEL.onnx... [--data cifar10?eval=2000] [--no-count]

Writes bench/out/emulated/targets.json (resumable: a (file, target) pair already in it is kept).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edgesmith.runtime import machine

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "emulated"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help=".tflite/.onnx files or artifact directories")
    parser.add_argument("--data", default="cifar10?eval=2000", help="data spec (eval images)")
    parser.add_argument("--no-count", action="store_true", help="skip the callgrind counts")
    parser.add_argument("--out", default=str(OUT / "targets.json"), help="JSON written")
    args = parser.parse_args()

    from edgesmith.core.errors import EdgesmithError
    from edgesmith.runtime.bench import BenchConfig, benchmark
    from edgesmith.runtime.emulation import TARGETS, emulated_benchmark
    from edgesmith.runtime.timing import TimingPlan

    out = Path(args.out)
    done: dict = json.loads(out.read_text()) if out.is_file() else {}
    done.setdefault("rows", {})
    done.update(host=machine.cpu_name(), data=args.data)
    quick = BenchConfig(timing=TimingPlan(min_runs=5, min_seconds=0.0, warmup_runs=1))

    def save() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(done, indent=2))

    for model in args.models:
        row = done["rows"].setdefault(model, {})
        for target in ("native", *TARGETS):
            if target in row:
                continue
            start = time.perf_counter()
            try:
                if target == "native":
                    document = benchmark([model], data=args.data, config=quick).document
                else:
                    document = emulated_benchmark(
                        [model], target=target, data=args.data, config=quick
                    )
            except EdgesmithError as exc:
                row[target] = {"error": str(exc)}
            else:
                (result,) = document.results
                row[target] = {"accuracy": result.accuracy, "num_eval": result.num_eval,
                               "provider": result.provider, "cpu": document.machine.cpu,
                               "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
            print(f"{model} [{target}]: {row[target]}", file=sys.stderr, flush=True)
            save()
        if not args.no_count and "instructions" not in row:
            from edgesmith.runtime.instructions import count_instructions

            (counted,) = count_instructions([model], BenchConfig(), data=args.data)
            row["instructions"] = counted.to_dict()
            save()

    targets = ("native", *TARGETS)
    head = f"{'model':48} " + " ".join(f"{t:>14}" for t in targets) + "  instructions/inf"
    print(head)
    print("-" * len(head))
    for model, row in done["rows"].items():
        native = row.get("native", {}).get("accuracy")
        cells = []
        for target in targets:
            record = row.get(target, {})
            if record.get("accuracy") is None:
                cells.append(f"{'error' if 'error' in record else '-':>14}")
                continue
            cell = f"{100 * record['accuracy']:.2f}%"
            if target != "native" and native is not None:
                cell += f" ({100 * (record['accuracy'] - native):+.2f})"
            cells.append(f"{cell:>14}")
        count = row.get("instructions", {}).get("per_inference")
        counted = f"{count:,.0f}" if count else "-"
        print(f"{Path(model).name[:48]:48} " + " ".join(cells) + f"  {counted:>16}")
    print(f"data {args.data}; host {done['host']}; emulated columns: accuracy only (qemu-user),")
    print("differences in points from native; instructions: valgrind callgrind on the host")
    return 0


if __name__ == "__main__":
    sys.exit(main())
