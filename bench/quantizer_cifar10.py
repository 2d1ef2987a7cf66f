"""The converter's PTQ against the LiteRT Quantizer on MLCommons' float ResNet-8 (CIFAR-10).

Every LiteRT file is made by edgesmith's own quantizer path (``export/litert_quantizer.py``,
the recipes of ``export/litert_recipes.py``) from MLCommons' float ``pretrainedResnet.tflite``,
calibrated on export's pick of 500 training images (raw pixels, spanning 0..255 as
``--raw-input`` does). MLCommons' own int8 file is the converter-PTQ reference. Then all files
are benched side by side in one ``edgesmith bench`` run (accuracy on the whole test split,
latency interleaved, 1 thread), and put through export's TFLM and Ethos-U target checks.

The mixed recipe needs a per-layer sensitivity; ``compress sensitivity`` measures it on a Keras
model, which MLCommons ships none of. So it is measured here on the float .tflite with the
LiteRT Quantizer itself: each conv/dense op alone gets 16-bit activations in an otherwise W8A8
file, and its accuracy gain is measured on 5,000 *training* images outside the calibration pick
(never the test images the table reports). The promotion rule is the one ``compress
sensitivity`` writes (``edgesmith.export.mixed_recipe``).

    EDGESMITH_DATA_DIR=DIR .venv/bin/python bench/quantizer_cifar10.py \\
        [--mlperf DIR/mlperf] [--data cifar10] [--quick]
    EDGESMITH_DATA_DIR=DIR .venv/bin/python bench/quantizer_cifar10.py \\
        --from dense=runs/r8 --from thin=runs/r8-thin [--data cifar10]

With ``--from NAME=ARTIFACT`` (Keras train artifacts, repeatable) the files are the user's path
instead: ``edgesmith compress sensitivity`` on the artifact (its int8 mode: each conv/dense op
alone left float, on 5,000 training images outside the calibration pick, so that the mixed recipe
is never chosen on the test images), then one ``edgesmith export`` of
``tflite-int8`` (the converter), ``tflite-w8a8``, ``tflite-w8a16`` and ``tflite-recipe`` with
that sensitivity's mixed recipe, each through export's parity gate; the same target checks and
one bench over all of them follow.

DIR is edgesmith's data folder (``$EDGESMITH_DATA_DIR``, else ``~/.cache/edgesmith/datasets``),
holding cifar10.npz; MLCommons' ``pretrainedResnet.tflite`` and ``pretrainedResnet_quant.tflite``
(github.com/mlcommons/tiny) are read from ``DIR/mlperf`` unless ``--mlperf`` names their folder.

Writes bench/out/quantizer/results.json and one folder per file under bench/out/quantizer/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from mlperf_files import FLOAT, QUANT, add_mlperf_flag, missing_mlperf

from edgesmith.runtime import machine

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "quantizer"
SENSITIVITY_IMAGES = 5000
CALIBRATION = 500


def accuracy(data: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a .tflite on raw pixels through edgesmith's runtime (1 thread)."""
    import tempfile

    from edgesmith.runtime import evaluate, load

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.tflite"
        path.write_bytes(data)
        model = load(path, threads=1, normalization="raw")
        try:
            return float(evaluate(model, x, y, batch_size=250)["accuracy"])
        finally:
            model.close()


def sensitivity(float_model: bytes, calibration, x, y, report) -> dict:
    """Per-op gain of 16-bit activations in a W8A8 file, as a compress-sensitivity document."""
    from edgesmith.export import litert_quantizer as lq
    from edgesmith.export.litert_recipes import exact_scope, op_scopes, static_rule
    from edgesmith.export.ops import tflite_op_report

    def quantized_accuracy(recipe) -> float:
        made = lq.quantize(float_model, recipe, calibration, validate_samples=0)
        return accuracy(made.model, x, y)

    float_acc = accuracy(float_model, x, y)
    full = quantized_accuracy([static_rule(8)])
    report(f"sensitivity: float {float_acc:.4f}, W8A8 {full:.4f} on {len(y)} training images")
    layers = []
    for op, scope in op_scopes(tflite_op_report(float_model)):
        if op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        tensor = scope[:-1]  # a single output: the scope is its name and a ';'
        recipe = [static_rule(8), static_rule(16, exact_scope(tensor), op)]
        gained = quantized_accuracy(recipe)
        name = _layer_name(scope)
        layers.append(
            {
                "layer": name,
                "op": op,
                "tensor": tensor,
                "accuracy_with_layer_a16": round(gained, 6),
                "gain_points": round(100 * (gained - full), 3),
            }
        )
        report(f"  {name:<12} {op:<16} A16: {gained:.4f} ({100 * (gained - full):+.2f})")
    layers.sort(key=lambda e: -e["gain_points"])
    return {
        "measured": "LiteRT Quantizer, one op at a time given 16-bit activations in W8A8",
        "images": f"{len(y)} CIFAR-10 training images outside the calibration pick",
        "float_accuracy_same_images": round(float_acc, 6),
        "int8_accuracy": round(full, 6),
        "layers": layers,
    }


def _layer_name(scope: str) -> str:
    """A short name for an op of MLCommons' file: the conv/dense its name says it is."""
    parts = [p for p in scope.split(";") if p]
    for part in reversed(parts):
        bits = part.split("/")
        if len(bits) > 2 and bits[-1] in ("Conv2D", "Conv2D1", "MatMul", "BiasAdd"):
            return bits[1]
    return parts[0][:30]


def make_files(float_path: Path, int8_path: Path, dataset, report) -> dict[str, dict]:
    """Every file of the comparison: name -> {path, what, recipe?, seconds?}."""
    from edgesmith.core.normalization import parse_normalization
    from edgesmith.export import calibration_inputs, calibration_pixels, mixed_recipe
    from edgesmith.export import litert_quantizer as lq
    from edgesmith.export.litert_recipes import builtin_recipe

    float_model = float_path.read_bytes()
    pixels = calibration_pixels(dataset.x_train, CALIBRATION)
    calibration = calibration_inputs(pixels, parse_normalization("raw"), raw_input=True)
    files: dict[str, dict] = {}

    def save(name: str, data: bytes, what: str, **extra) -> None:
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        (folder / "model.tflite").write_bytes(data)
        files[name] = {"path": str(folder / "model.tflite"), "what": what, **extra}

    save("float32 (MLCommons)", float_model, "MLCommons' float file")
    save("converter int8 (MLCommons)", int8_path.read_bytes(), "MLCommons' int8 file")
    for fmt, label, rule in (
        ("tflite-w8a8", "litert W8A8", "min-max"),
        ("tflite-w8a8", "litert W8A8, moving-average", "moving-average"),
        ("tflite-w8a16", "litert W8A16", "min-max"),
        ("tflite-w4-weight-only", "litert W4 weight-only", "min-max"),
        ("tflite-w4-block32", "litert W4 block32 (dense)", "min-max"),
    ):
        spec = builtin_recipe(fmt)
        started = time.perf_counter()
        made = lq.quantize(float_model, spec.recipe, calibration, calibration_rule=rule)
        seconds = round(time.perf_counter() - started, 2)
        save(label, made.model, f"{fmt} ({spec.name}, {rule})", seconds=seconds)
        files[label]["validation_output"] = made.validation.get("output")
        report(f"{label}: {len(made.model):,} B in {seconds} s")
    # the mixed recipe: sensitivity on training images outside the calibration pick
    picked = set(np.linspace(0, len(dataset.x_train) - 1, CALIBRATION).round().astype(int))
    rest = np.array([i for i in range(len(dataset.x_train)) if i not in picked])
    chosen = rest[np.linspace(0, len(rest) - 1, SENSITIVITY_IMAGES).round().astype(int)]
    document = sensitivity(
        float_model,
        calibration,
        dataset.x_train[chosen],
        dataset.y_train[chosen],
        report,
    )
    mixed = mixed_recipe(document)
    document["litert_recipe"] = mixed
    made = lq.quantize(float_model, mixed["recipe"], calibration)
    promoted = [p["layer"] for p in mixed["promoted"]]
    save(
        "litert mixed W8A8/W8A16",
        made.model,
        f"mixed recipe: 16-bit activations for {', '.join(promoted) or 'none'}",
        promoted=mixed["promoted"],
    )
    (OUT / "sensitivity.json").write_text(json.dumps(document, indent=2))
    return files


FROM_FORMATS = (
    ("tflite-int8", "converter int8"),
    ("tflite-w8a8", "litert W8A8"),
    ("tflite-w8a16", "litert W8A16"),
    ("tflite-recipe", "litert mixed W8A8/W8A16"),
)


def holdout_spec(dataset) -> str:
    """A data spec whose eval split is 5,000 training images outside the calibration pick.

    The mixed recipe is chosen on these, never on the test images the table reports.
    """
    path = OUT / f"train-holdout-{dataset.fingerprint[:12]}.npz"  # one per data set
    if not path.is_file():
        picked = set(np.linspace(0, len(dataset.x_train) - 1, CALIBRATION).round().astype(int))
        rest = np.array([i for i in range(len(dataset.x_train)) if i not in picked])
        chosen = rest[np.linspace(0, len(rest) - 1, SENSITIVITY_IMAGES).round().astype(int)]
        partial = path.with_suffix(".partial.npz")
        np.savez(
            partial,
            x_train=dataset.x_train,
            y_train=dataset.y_train,
            x_test=dataset.x_train[chosen],
            y_test=dataset.y_train[chosen],
        )
        partial.replace(path)
    return f"npz:{path}"


def files_from_artifacts(
    artifacts: list[tuple[str, Path]], data: str, dataset, report
) -> dict[str, dict]:
    """Each artifact's sensitivity and export (the CLI a user runs), as the comparison's files."""
    import subprocess

    cli = [sys.executable, "-m", "edgesmith"]
    files: dict[str, dict] = {}
    for name, artifact in artifacts:
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        sens = folder / "sensitivity.json"
        source_id = json.loads((artifact / "manifest.json").read_text())["id"]
        if sens.is_file() and json.loads(sens.read_text()).get("source_id") != source_id:
            sens.unlink()  # measured on another artifact under this NAME: measure again
        if not sens.is_file():
            report(f"{name}: compress sensitivity on training images outside calibration ...")
            subprocess.run(
                [
                    *cli,
                    "compress",
                    "sensitivity",
                    "--from",
                    str(artifact),
                    "--data",
                    holdout_spec(dataset),
                    "--max-eval",
                    str(SENSITIVITY_IMAGES),
                    "--out",
                    str(sens),
                    "--no-plot",
                    "--quiet",
                ],
                check=True,
            )
        export = folder / "export"
        if export.exists():  # this bench's own output of an earlier run
            import shutil

            shutil.rmtree(export)
        formats = ",".join(fmt for fmt, _ in FROM_FORMATS)
        report(f"{name}: export {formats} ...")
        started = time.perf_counter()
        subprocess.run(
            [
                *cli,
                "export",
                "--from",
                str(artifact),
                "--format",
                formats,
                "--quantizer-recipe",
                str(sens),
                "--data",
                data,
                "--out",
                str(export),
                "--quiet",
            ],
            check=True,
        )
        seconds = round(time.perf_counter() - started, 1)
        mixed = json.loads(sens.read_text())
        for fmt, label in FROM_FORMATS:
            manifest = json.loads((export / fmt / "manifest.json").read_text())
            entry = {
                "path": str(export / fmt / "model.tflite"),
                "what": f"{fmt} of {artifact}",
                "parity": (manifest.get("metrics") or {}).get("parity"),
                "export_seconds_all_formats": seconds,
            }
            if fmt == "tflite-recipe":
                promoted = mixed["litert_recipe"]["promoted"]  # what sensitivity wrote
                entry["promoted"] = [layer["layer"] for layer in promoted]
            files[f"{name}: {label}"] = entry
    return files


def target_checks(files: dict[str, dict]) -> None:
    """TFLM (measured arena) and Ethos-U55-128 (Vela) for each file, or the plain refusal."""
    from edgesmith.core.errors import CheckFailed, EdgesmithError
    from edgesmith.export.ops import tflite_op_report
    from edgesmith.export.targets import check_target

    for name, entry in files.items():
        path = Path(entry["path"])
        report = tflite_op_report(path.read_bytes())
        for target in ("tflm", "ethos-u55-128"):
            try:
                record = check_target(target, report, path, name)
            except (CheckFailed, EdgesmithError) as exc:
                entry[target] = {
                    "verdict": "fail",
                    "why": str(exc).split(f"--target {target}: ")[-1],
                }
                continue
            if target == "tflm":
                entry[target] = {
                    "verdict": "pass",
                    "arena_bytes": record.get("arena_bytes"),
                    "arena_source": record.get("arena_source"),
                }
            else:
                vela = record["vela"]
                entry[target] = {
                    "verdict": "pass",
                    "npu_ops": vela["npu_ops"],
                    "cpu_ops": vela["cpu_ops"],
                    "inference_ms": round(vela["inference_ms"], 3),
                    "sram_kb": round(vela["sram_kb"], 1),
                    "flash_kb": round(vela["flash_kb"], 1),
                }


def bench(files: dict[str, dict], data: str, quick: bool, report) -> dict:
    """One interleaved edgesmith bench run over every file: accuracy, size, latency p50."""
    from edgesmith.runtime.bench import BenchConfig, benchmark
    from edgesmith.runtime.timing import TimingPlan

    timing = TimingPlan(min_runs=50, min_seconds=1.0) if quick else TimingPlan()
    config = BenchConfig(threads=1, foreign_normalization="raw", timing=timing, eval_batch=250)
    run = benchmark(
        [entry["path"] for entry in files.values()], data=data, config=config, report=report
    )
    document = run.document
    for entry, result in zip(files.values(), document.results, strict=True):
        entry.update(
            accuracy=result.accuracy,
            num_eval=result.num_eval,
            size_bytes=result.size_bytes,
            latency_p50_ms=result.latency.p50,
            latency_runs=result.latency.runs,
        )
    return {"settings": document.settings.to_dict(), "machine": document.machine.to_dict()}


def table(files: dict[str, dict]) -> str:
    """The Markdown table of the results."""
    lines = [
        "| file | accuracy | size | latency p50 | TFLM arena | Ethos-U55-128 (Vela) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, e in files.items():
        tflm = e.get("tflm", {})
        tflm_text = (
            f"{tflm['arena_bytes']:,} B"
            if tflm.get("verdict") == "pass" and tflm.get("arena_bytes")
            else f"fails: {tflm.get('why', '-')}"
        )
        npu = e.get("ethos-u55-128", {})
        if npu.get("verdict") != "pass":
            npu_text = f"fails: {npu.get('why', '-')}"
        elif npu["npu_ops"] == 0:
            npu_text = f"compiles, all {npu['cpu_ops']} ops left to the CPU"
        else:
            npu_text = (
                f"{npu['npu_ops']} NPU / {npu['cpu_ops']} CPU ops, {npu['inference_ms']} ms, "
                f"SRAM {npu['sram_kb']} KB"
            )
        lines.append(
            f"| {name} | {100 * e['accuracy']:.2f}% | {e['size_bytes']:,} B | "
            f"{e['latency_p50_ms']:.3f} ms | {tflm_text} | {npu_text} |"
        )
    return "\n".join(lines)


def named_artifact(text: str) -> tuple[str, Path]:
    """``--from NAME=ARTIFACT``: a name for the table and a train artifact folder."""
    name, sep, folder = text.partition("=")
    if not sep or not (Path(folder) / "manifest.json").is_file():
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME=ARTIFACT_DIR (a folder with manifest.json)"
        )
    if not name.replace("-", "").replace("_", "").isalnum():
        raise argparse.ArgumentTypeError(
            f"{text!r}: NAME names a folder under {OUT}: letters, digits, - and _ only"
        )
    return name, Path(folder)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mlperf_flag(parser)
    parser.add_argument("--data", default="cifar10", help="data spec (the test split is benched)")
    parser.add_argument("--quick", action="store_true", help="short timing plan (smoke test)")
    parser.add_argument(
        "--from",
        dest="artifacts",
        type=named_artifact,
        action="append",
        default=[],
        metavar="NAME=ARTIFACT",
        help="compare these Keras train artifacts' files instead of MLCommons' (repeatable)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    artifacts = args.artifacts
    from edgesmith.core.datasets import load_dataset
    from edgesmith.core.errors import EdgesmithError

    mlperf, missing = missing_mlperf(args.mlperf)
    if missing and not artifacts:
        print(missing[0], file=sys.stderr)
        return 2

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.time()
    try:  # cifar10: DIR/cifar10.npz, else downloaded once (edgesmith's own loader)
        dataset = load_dataset(args.data)
    except EdgesmithError as exc:
        print(f"quantizer_cifar10: error: {exc}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    if artifacts:
        import subprocess

        try:
            files = files_from_artifacts(artifacts, args.data, dataset, report)
        except subprocess.CalledProcessError as exc:
            print(
                f"quantizer_cifar10: {' '.join(exc.cmd[2:5])} ... exited {exc.returncode}",
                file=sys.stderr,
            )
            return 2
    else:
        files = make_files(
            mlperf / FLOAT,
            mlperf / QUANT,
            dataset,
            report,
        )
    target_checks(files)
    run = bench(files, args.data, args.quick, report)
    from edgesmith.export import litert_quantizer as lq

    result = {
        "host": machine.cpu_name(),
        "cores": os.cpu_count(),
        "data": args.data,
        "ai_edge_quantizer": lq.version(),
        "bench": run,
        "files": files,
        "seconds": round(time.time() - started, 1),
    }
    name = "results-from.json" if artifacts else "results.json"
    (OUT / name).write_text(json.dumps(result, indent=2, default=str))
    print(table(files))
    print(f"\n{result['host']}, {result['cores']} cores; {result['seconds']} s; {OUT}/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
