"""``edgesmith demo``: the whole pipeline on the embedded digits data, in a few minutes on a CPU.

Train a ResNet-8 (and a ResNet-20 teacher), compress it four ways (75% pruning, channel
pruning, quantisation-aware training, distillation), export to TFLite and ONNX with a parity
check on every file, then benchmark them all side by side: a table and a Pareto plot.
Each step leaves its own artifact; a re-run reuses the finished ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgesmith.core.artifacts import Artifact, read_artifact
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import Reporter, stderr_reporter

if TYPE_CHECKING:
    from edgesmith.runtime import BenchDocument

DATA = "digits"


def _reuse_or_run(path: Path, run: Callable[[], Any], report: Reporter) -> Artifact:
    """A finished artifact at ``path`` is reused (a re-run is fast); anything else is made."""
    if (path / "manifest.json").is_file():
        try:
            artifact = read_artifact(path)
        except EdgesmithError:
            pass  # damaged or from another version: fall through to an error below
        else:
            report(f"reusing {path}")
            return artifact
    if path.exists() and any(path.iterdir()):
        raise EdgesmithError(f"{path} holds something that is not a finished artifact; remove it")
    return run()


def _claim(out: Path, settings: dict) -> None:
    """Record the demo's settings in ``out``; refuse a directory made with other settings.

    Reuse is only right when the finished steps were made the same way.
    """
    marker = out / "demo.json"
    if marker.is_file():
        before = json.loads(marker.read_text())
        if before != settings:
            raise EdgesmithError(
                f"{out} holds a demo made with {before}, not {settings}; "
                "pass another --out or remove it"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise EdgesmithError(f"--out {out} is not empty and holds no demo; choose another")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(settings))


def _exports(source: Path, formats: list[str], out: Path, report: Reporter) -> list[Path]:
    from edgesmith.export import export

    done = [out / name for name in formats if (out / name / "manifest.json").is_file()]
    if len(done) == len(formats):
        report(f"reusing {out}")
        return done
    missing = [name for name in formats if out / name not in done]
    export(source, missing, out, report=report)
    return [out / name for name in formats]


def run_demo(
    out: str | Path = "runs/demo",
    *,
    epochs: int = 20,
    bench_seconds: float = 1.0,
    report: Reporter | None = None,
) -> BenchDocument:
    """Run the pipeline and return the bench document (also written to ``out/bench.json``).

    Args:
        out: directory for every artifact, the bench JSON/Markdown and the plots.
        epochs: training epochs of the dense model, the teacher and the distilled student.
        bench_seconds: minimum timed seconds per model (at least 300 runs each too).
        report: receives progress lines (stderr by default).

    Raises:
        EdgesmithError: when ``out`` holds something that is not a finished demo step.
    """
    from edgesmith.compress import (
        ChannelPruneConfig,
        DistillConfig,
        PruneConfig,
        QatConfig,
        distill,
        prune,
        qat,
    )
    from edgesmith.runtime.bench import BenchConfig, benchmark
    from edgesmith.runtime.plots import plots_available, write_plots
    from edgesmith.runtime.report import markdown, terminal_table
    from edgesmith.runtime.timing import TimingPlan
    from edgesmith.train import TrainConfig, train

    report = report or stderr_reporter()
    out = Path(out)
    _claim(out, {"epochs": epochs, "data": DATA})
    started = time.perf_counter()
    quiet = {"report": report}

    def step(name: str, make: Callable[[Path], Artifact]) -> Artifact:
        report(f"== {name}")
        path = out / name
        return _reuse_or_run(path, lambda: make(path), report)

    dense = step(
        "dense", lambda p: train(TrainConfig(data=DATA, model="resnet8", epochs=epochs), p, **quiet)
    )
    teacher = step(
        "teacher",
        lambda p: train(TrainConfig(data=DATA, model="resnet20", epochs=epochs), p, **quiet),
    )
    candidates = {
        "dense": dense,
        "prune75": step(
            "prune75", lambda p: prune(dense.path, PruneConfig(sparsity=0.75, epochs=4), p, **quiet)
        ),
        "channels": step(
            "channels",
            lambda p: prune(
                dense.path,
                ChannelPruneConfig(mac_reduction=0.5, round_to=8, epochs=4),
                p,
                **quiet,
            ),
        ),
        "qat": step("qat", lambda p: qat(dense.path, QatConfig(epochs=2), p, **quiet)),
        "distilled": step(
            "distilled",
            lambda p: distill(
                teacher.path, DistillConfig(student="resnet8", epochs=epochs), p, **quiet
            ),
        ),
    }
    report("== export (each file checked against its Keras source)")
    files: list[Path] = []
    for name, artifact in candidates.items():
        formats = ["tflite-int8"]
        if name == "dense":
            formats = ["tflite-fp32", "tflite-int8", "onnx", "onnx-int8"]
        files += _exports(artifact.path, formats, out / "export" / name, report)
    report("== bench (interleaved, 1 thread)")
    config = BenchConfig(threads=1, timing=TimingPlan(min_runs=300, min_seconds=bench_seconds))
    run = benchmark(files, data=DATA, config=config, report=report)
    document = run.document
    demo = {
        "keras_accuracy": {n: a.metrics.accuracy for n, a in candidates.items()},
        "teacher_accuracy": teacher.metrics.accuracy,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    # the bench document, plus what only the demo knows (bench_schema reads past "demo")
    (out / "bench.json").write_text(json.dumps({**document.to_dict(), "demo": demo}, indent=1))
    plots = write_plots(document, run.rounds, out / "plots") if plots_available() else []
    (out / "bench.md").write_text(markdown(document, plots, base=out))
    print(terminal_table(document))
    print(
        f"\nteacher resnet20 {demo['teacher_accuracy']:.2%} (Keras); "
        f"wall time {demo['wall_seconds']:.0f} s"
    )
    where = ", ".join(str(p) for p in plots) if plots else "no plots (pip install matplotlib)"
    print(f"report {out / 'bench.md'}; {where}")
    return document
