"""The instruction gate against wall-clock: does a counted cost catch a 2% change noise hides?

Issue 24's cost-gate benchmark. A small float CNN on the digits data (8x8x1, float32 .tflite,
LiteRT + XNNPACK, one thread) is the base; variants are real model changes (channels added to
a conv layer, a small op inserted), each built and trained the same way, and sized by
measuring: every candidate change is counted under callgrind and the one whose instruction
ratio over the base lies nearest to 1.02, 1.05 and 1.10 (and above the 1.02 limit) is taken.
Then, in 20 trials each, the unchanged base file and the +2/5/10% variants are gated:

- **instruction gate**: ``check(VARIANT, BASELINE, measure="instructions", max_increase=1.02)``
  (``edgesmith check VARIANT --baseline BASELINE --measure instructions --max-increase 1.02``).
  ``--flow stored`` (default): BASELINE is ``base-stored.json``, benched from a copy of the base
  file that was then deleted with its store (a CI job that kept the JSON only), so each check
  counts the candidate in one valgrind child and compares it with the baseline's count, taken
  in another process. ``--flow paired``: ``base.json`` with its store, each check counting the
  candidate and the stored reference file (twice the valgrind time);
- **wall-clock gate**: ``check(VARIANT, base.json, max_slowdown=1.02)`` at ``check``'s default
  timing (>= 500 runs and >= 5 s per model, interleaved with the stored reference file), the
  process pinned to one CPU.

The baselines are written once by ``edgesmith bench FILE --data digits --measure instructions
--json-out base.json``. Both gates run with ``--no-accuracy``, so a verdict is the cost's
alone. A detection is exit 1 (``regression``; for wall-clock also ``noisy``, as the gate fails
closed). The spread of the unchanged file's 20 counts (max/min - 1, each from a process of its
own) is the count's reproducibility across processes. Instruction counts are counts, not time.

    .venv/bin/python bench/instruction_gate.py [--trials 20] [--jobs 2] [--flow stored|paired]

Writes models, baselines and a bytecode cache under bench/out/instruction_gate/, and every
trial to bench/out/instruction_gate.json as it ends (resumable: a rerun skips what is done; a
model that changed since is refused, ``--fresh`` starts over). Prints progress lines and a
Markdown table. Needs valgrind and TensorFlow (to build the models, in a child process).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

for _name in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_NUM_INTRAOP_THREADS",
):
    os.environ.setdefault(_name, "1")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
WORK = OUT / "instruction_gate"
# Bytecode cached outside the source tree, so each valgrind child (a fresh Python) does not
# compile edgesmith's modules again: a quarter of a count's CPU time, all of it before the
# counted loop (the count itself moved by 0.001% on the base with this setting).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ.setdefault("PYTHONPYCACHEPREFIX", str(WORK / "pycache"))
LIMIT = 1.02
TARGETS = {"+2%": 1.02, "+5%": 1.05, "+10%": 1.10}
CASES = ("unchanged", *TARGETS)
DATA = "digits"
EPOCHS = 15

# The base CNN: conv1 3x3 (c1) -> conv2 3x3 (c2) -> 2x2 max-pool -> conv3 3x3 (c3) -> global
# average pool -> dense 10 -> softmax, all "same"-padded ReLU convs. ``extra``: a depthwise 3x3
# conv inserted after conv2 ("dw") or a 1x1 conv after conv3 ("pw").
BASE = {"c1": 16, "c2": 40, "c3": 32, "extra": None}
CANDIDATES = {
    **{f"conv2-{40 + k}": ({"c2": 40 + k}, f"conv2 40 -> {40 + k} channels") for k in range(2, 9)},
    **{f"conv1-{16 + k}": ({"c1": 16 + k}, f"conv1 16 -> {16 + k} channels") for k in (1, 2, 3)},
    "conv3-48": ({"c3": 48}, "conv3 32 -> 48 channels"),
    "dw-after-conv2": ({"extra": "dw"}, "a depthwise 3x3 conv inserted after conv2"),
    "pw-after-conv3": ({"extra": "pw"}, "a 1x1 conv (32 channels) inserted after conv3"),
}


def say(line: str) -> None:
    """A progress line on stderr, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def sha256(path: Path) -> str:
    """The file's sha256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lscpu() -> dict:
    """The CPU's model name and whether it has AVX-512 VNNI (``lscpu``)."""
    try:
        said = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return {"model": platform.processor() or "unknown", "avx512_vnni": None}
    model, flags = "unknown", ""
    for line in said.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            model = value.strip()
        elif key.strip() == "Flags":
            flags = value
    return {"model": model, "avx512_vnni": "avx512_vnni" in flags.split()}


# -- building the models (a child process: TensorFlow stays out of the measuring process) -----


def build_models(folder: Path, names: list[str]) -> dict:
    """Build, train and convert base and the named candidates into ``folder``; their records."""
    import numpy as np

    from edgesmith.core.datasets import load_dataset
    from edgesmith.core.normalization import parse_normalization
    from edgesmith.runtime.embedded_metadata import tflite_with_metadata
    from edgesmith.tfkeras.backend import keras, tf

    data = load_dataset(DATA)
    norm = parse_normalization("unit")
    x_train, x_eval = norm.apply(data.x_train), norm.apply(data.x_eval)
    document = {
        "labels": list(data.labels),
        "input": {
            "shape": list(data.input_shape),
            "layout": "NHWC",
            "dtype": "float32",
            "normalization": norm.to_dict(),
            "raw_input": False,
            "quantization": None,
        },
        "output": {"kind": "probabilities", "shape": [data.num_classes]},
    }
    layers = keras.layers
    records = {}
    for name in names:
        arch = {**BASE, **(CANDIDATES[name][0] if name != "base" else {})}
        keras.utils.set_random_seed(0)
        inputs = keras.Input(data.input_shape, name="input")
        x = layers.Conv2D(arch["c1"], 3, padding="same", activation="relu", name="conv1")(inputs)
        x = layers.Conv2D(arch["c2"], 3, padding="same", activation="relu", name="conv2")(x)
        if arch["extra"] == "dw":
            x = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(x)
        x = layers.MaxPooling2D(2, name="pool")(x)
        x = layers.Conv2D(arch["c3"], 3, padding="same", activation="relu", name="conv3")(x)
        if arch["extra"] == "pw":
            x = layers.Conv2D(arch["c3"], 1, activation="relu", name="pw")(x)
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        x = layers.Dense(data.num_classes, name="logits")(x)
        outputs = layers.Activation("softmax", name="softmax")(x)
        model = keras.Model(inputs, outputs, name=name)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
        model.fit(x_train, data.y_train, epochs=EPOCHS, batch_size=64, verbose=0)
        accuracy = float(model.evaluate(x_eval, data.y_eval, verbose=0)[1])
        flat = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        path = folder / f"{name}.tflite"
        path.write_bytes(tflite_with_metadata(flat, document))
        params = int(sum(np.prod(w.shape) for w in model.weights))
        records[name] = {
            "path": str(path.relative_to(ROOT)),
            "arch": arch,
            "keras_accuracy": accuracy,
            "params": params,
            "sha256": sha256(path),
        }
        print(
            f"built {name}: {params} parameters, keras eval accuracy {accuracy:.4f}",
            file=sys.stderr,
            flush=True,
        )
    return records


# -- the benchmark -----------------------------------------------------------------------------


class Results:
    """The JSON document, written whole after every change (one writer at a time)."""

    def __init__(self, path: Path, fresh: bool) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.doc = {} if fresh or not path.is_file() else json.loads(path.read_text())
        for key in ("models", "sizing", "instructions", "instructions_paired", "wallclock"):
            self.doc.setdefault(key, {})

    def save(self) -> None:
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(self.doc, indent=2) + "\n")
            os.replace(tmp, self.path)

    def put(self, section: str, key: str, record: dict) -> None:
        with self.lock:
            self.doc[section][key] = record
        self.save()


def ensure_models(results: Results) -> None:
    """Every model file built (in a child) and unchanged since the JSON recorded it."""
    WORK.mkdir(parents=True, exist_ok=True)
    wanted = ["base", *CANDIDATES]
    models = results.doc["models"]
    for name in list(models):
        path = ROOT / models[name]["path"]
        if not path.is_file() or sha256(path) != models[name]["sha256"]:
            raise SystemExit(
                f"{path} is missing or changed since {results.path} recorded it: rerun with "
                "--fresh to start over"
            )
    missing = [name for name in wanted if name not in models]
    if not missing:
        return
    say(f"building {len(missing)} model(s) in a child process: {', '.join(missing)}")
    listing = WORK / "built.json"
    subprocess.run([sys.executable, __file__, "--build", *missing], check=True)
    built = json.loads(listing.read_text())
    for name in missing:
        built[name]["change"] = "none (the base)" if name == "base" else CANDIDATES[name][1]
        results.put("models", name, built[name])


def size_variants(results: Results, jobs: int) -> dict:
    """Count every model once; pick for each target the variant nearest it above the limit."""
    from edgesmith.runtime.bench import BenchConfig
    from edgesmith.runtime.instructions import count_instructions

    models = results.doc["models"]
    todo = [name for name in models if name not in results.doc["sizing"]]

    def count(name: str) -> None:
        start = time.perf_counter()
        (counted,) = count_instructions([ROOT / models[name]["path"]], BenchConfig(), data=DATA)
        results.put(
            "sizing",
            name,
            {
                "per_inference": counted.per_inference,
                "seconds": round(time.perf_counter() - start, 1),
            },
        )
        say(f"sizing: {name}: {counted.per_inference:,.1f} instructions per inference (count)")

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        list(pool.map(count, todo))
    sizing = results.doc["sizing"]
    base = sizing["base"]["per_inference"]
    ratios = {name: sizing[name]["per_inference"] / base for name in CANDIDATES}
    chosen = {}
    for label, target in TARGETS.items():
        above = {name: r for name, r in ratios.items() if r > LIMIT}
        if not above:
            raise SystemExit(f"no candidate change counts more than {LIMIT}x the base")
        chosen[label] = min(above, key=lambda name, t=target: abs(above[name] - t))
        say(
            f"sizing: {label}: {chosen[label]} ({models[chosen[label]]['change']}), measured "
            f"ratio {ratios[chosen[label]]:.4f}"
        )
    if "chosen" in results.doc and results.doc["chosen"] != chosen:
        raise SystemExit(
            f"the sizing now picks {chosen}, the JSON's trials used "
            f"{results.doc['chosen']}: rerun with --fresh"
        )
    with results.lock:
        results.doc["chosen"] = chosen
    results.save()
    return chosen


def ensure_baseline(results: Results, *, stored: bool = False) -> Path:
    """``base.json`` (and its store), written once by ``edgesmith bench``.

    ``stored``: ``base-stored.json``, benched from a copy of the base file that is deleted
    afterwards with the store, so ``check`` has the baseline's count and no reference file.
    """
    baseline = WORK / ("base-stored.json" if stored else "base.json")
    if baseline.is_file():
        return baseline
    model = Path(results.doc["models"]["base"]["path"])
    if stored:
        gone = WORK / "gone"
        gone.mkdir(exist_ok=True)
        shutil.copyfile(ROOT / model, gone / model.name)
        model = (gone / model.name).relative_to(ROOT)
    command = [
        sys.executable,
        "-m",
        "edgesmith",
        "bench",
        str(model),
        "--data",
        DATA,
        "--measure",
        "instructions",
        "--json-out",
        str(baseline.relative_to(ROOT)),
        "--quiet",
    ]
    say("baseline: " + " ".join(["edgesmith", *command[3:]]))
    subprocess.run(command, check=True, cwd=ROOT)
    if stored:
        shutil.rmtree(WORK / "gone")
        shutil.rmtree(WORK / "base-stored.models")
    with results.lock:
        key = "stored_baseline_command" if stored else "baseline_command"
        results.doc[key] = " ".join(["edgesmith", *command[3:]])
    results.save()
    return baseline


def case_file(results: Results, case: str) -> str:
    """The candidate file of a case: the base file itself when unchanged."""
    name = "base" if case == "unchanged" else results.doc["chosen"][case]
    return results.doc["models"][name]["path"]


def instruction_trial(
    results: Results, baseline: Path, section: str, case: str, trial: int
) -> None:
    """One ``check --measure instructions --max-increase 1.02`` of a case, recorded."""
    from edgesmith.runtime.regression import CheckOptions, check

    options = CheckOptions(measure="instructions", max_increase=LIMIT, skip_accuracy=True)
    start = time.perf_counter()
    (verdict,) = check([str(ROOT / case_file(results, case))], baseline, options)
    counted = verdict.instructions
    record = {
        "status": verdict.latency_status.value,
        "exit_1": not verdict.ok,
        "stored_count": any("stored count" in note for note in verdict.notes),
        "ratio": counted.ratio if counted else None,
        "candidate": counted.candidate.per_inference if counted else None,
        "reference": counted.reference.per_inference if counted else None,
        "seconds": round(time.perf_counter() - start, 1),
    }
    results.put(section, f"{case}/{trial}", record)
    ratio = f"{record['ratio']:.5f}" if counted else "-"
    say(
        f"instructions {case} trial {trial + 1}: ratio {ratio}, {record['status']}, "
        f"{record['seconds']} s"
    )


def wallclock_trial(results: Results, baseline: Path, case: str, trial: int) -> None:
    """One ``check --max-slowdown 1.02`` of a case at the default timing, recorded."""
    from edgesmith.runtime.regression import CheckOptions, check

    options = CheckOptions(max_slowdown=LIMIT, skip_accuracy=True)
    start = time.perf_counter()
    (verdict,) = check([str(ROOT / case_file(results, case))], baseline, options)
    estimate = verdict.latency
    load = os.getloadavg()[0]
    record = {
        "status": verdict.latency_status.value,
        "exit_1": not verdict.ok,
        "mode": verdict.mode,
        "ratio": estimate.ratio if estimate else None,
        "low": estimate.low if estimate else None,
        "high": estimate.high if estimate else None,
        "rounds": estimate.rounds if estimate else None,
        "load_1min": load,
        "seconds": round(time.perf_counter() - start, 1),
    }
    results.put("wallclock", f"{case}/{trial}", record)
    ratio = f"{estimate.ratio:.4f} [{estimate.low:.4f}, {estimate.high:.4f}]" if estimate else "-"
    say(f"wall-clock {case} trial {trial + 1}: ratio {ratio}, {record['status']}, load {load:.2f}")


def spread(values: list[float]) -> float | None:
    """max/min - 1 (0.0 when every value is the same)."""
    return max(values) / min(values) - 1 if values else None


def records(section: dict, case: str, trials: int) -> list[dict]:
    """A case's trial records of one section, in trial order."""
    keys = (f"{case}/{t}" for t in range(trials))
    return [section[key] for key in keys if key in section]


def table(results: Results, trials: int, flow: str) -> str:
    """The Markdown table of the trials, and the reproducibility lines under it."""
    doc = results.doc
    section = doc["instructions" if flow == "stored" else "instructions_paired"]
    base = doc["sizing"]["base"]["per_inference"]
    lines = [
        "| case | change | instructions / inference (count) | measured instruction ratio | "
        "instruction gate exit 1 | wall-clock gate exit 1 (regression + noisy) | wall-clock "
        "median ratio (range) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for case in CASES:
        name = "base" if case == "unchanged" else doc["chosen"][case]
        ins = records(section, case, trials)
        wall = records(doc["wallclock"], case, trials)
        count = statistics.median(
            [r["candidate"] for r in ins if r["candidate"]]
            or [doc["sizing"][name]["per_inference"]]
        )
        ratio = statistics.median([r["ratio"] for r in ins if r["ratio"]] or [count / base])
        reg = sum(r["status"] == "regression" for r in wall)
        noisy = sum(r["status"] == "noisy" for r in wall)
        ratios = [r["ratio"] for r in wall if r["ratio"] is not None]
        med = (
            f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})"
            if ratios
            else "-"
        )
        lines.append(
            f"| {case} | {doc['models'][name]['change']} | {count:,.1f} | {ratio:.4f} | "
            f"{sum(r['exit_1'] for r in ins)}/{len(ins)} | {reg + noisy}/{len(wall)} "
            f"({reg} + {noisy}) | {med} |"
        )
    lines.append("")
    for case in CASES:
        counts = [r["candidate"] for r in records(section, case, trials) if r["candidate"]]
        if counts:
            lines.append(
                f"- {case}: {len(counts)} counts in separate processes, {len(set(counts))} "
                f"distinct, {min(counts):,.2f}-{max(counts):,.2f}, spread max/min-1 = "
                f"{100 * spread(counts):.4f}%"
            )
    refs = [r["reference"] for r in section.values() if r["reference"]]
    if refs:
        what = "the baseline's stored count" if flow == "stored" else "the reference counts"
        lines.append(
            f"- {what}: {len(refs)} values, {len(set(refs))} distinct, "
            f"{min(refs):,.2f}-{max(refs):,.2f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per case and gate")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="instruction checks at once (counts do not depend on load)",
    )
    parser.add_argument(
        "--cpu",
        type=int,
        default=None,
        help="CPU the wall-clock trials are pinned to (default: the last)",
    )
    parser.add_argument("--out", default=str(OUT / "instruction_gate.json"), help="JSON written")
    parser.add_argument(
        "--flow",
        choices=("stored", "paired"),
        default="stored",
        help="instruction checks against base-stored.json, whose file is gone, so only the "
        "candidate is counted and compared with the baseline's count (stored, default), or "
        "against base.json with its store, both files counted in every check (paired)",
    )
    parser.add_argument("--fresh", action="store_true", help="start over (models, baseline)")
    parser.add_argument("--build", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        records = build_models(WORK, args.build)
        (WORK / "built.json").write_text(json.dumps(records, indent=2))
        return 0

    started = time.time()
    if args.fresh and WORK.exists():
        shutil.rmtree(WORK)
    results = Results(Path(args.out), args.fresh)
    results.doc.update(
        cpu=lscpu(), limit=LIMIT, data=DATA, trials=args.trials, python=platform.python_version()
    )
    ensure_models(results)
    size_variants(results, args.jobs)
    baseline = ensure_baseline(results)
    counted_against = ensure_baseline(results, stored=True) if args.flow == "stored" else baseline
    section = "instructions" if args.flow == "stored" else "instructions_paired"

    say(
        f"instruction gate ({args.flow}, {counted_against.name}): {args.trials} trials x "
        f"{len(CASES)} cases, {args.jobs} at a time"
    )
    todo = [
        (case, t)
        for t in range(args.trials)
        for case in CASES
        if f"{case}/{t}" not in results.doc[section]
    ]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [
            pool.submit(instruction_trial, results, counted_against, section, case, t)
            for case, t in todo
        ]
        for done in futures:
            done.result()

    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    with results.lock:
        results.doc["wallclock_cpu"] = cpu
    say(f"wall-clock gate: {args.trials} trials x {len(CASES)} cases, pinned to CPU {cpu}")
    for t in range(args.trials):
        order = CASES[t % len(CASES) :] + CASES[: t % len(CASES)]  # rotate the order per trial
        for case in order:
            if f"{case}/{t}" not in results.doc["wallclock"]:
                wallclock_trial(results, baseline, case, t)

    with results.lock:
        results.doc.setdefault("runs", []).append(
            {
                "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)),
                "seconds": round(time.time() - started),
            }
        )
    results.save()
    print(table(results, args.trials, args.flow))
    say(f"done in {time.time() - started:.0f} s; {results.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
