"""The int8 accuracy budget: the cheapest quantisation whose *exported file* stays within P points.

Attempts, in order, each measured on the exported .tflite run by edgesmith's runtime (never the
Keras simulation, which disagrees with the file: tfmot #368, #974):

1. post-training int8 (``edgesmith.export``'s ``tflite-int8``: full integer, int8 I/O);
2. quantization-aware training, exported the same way;
3. post-training int8 with the most sensitive conv/dense ops left float, one more per attempt
   (ranked by :mod:`edgesmith.compress.sensitivity`: the accuracy each op recovers when float).

The first attempt within budget is chosen; every attempt is recorded. ``out`` holds one
sub-directory per attempt's artifact and ``autotune.json``, and appears by one rename.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
from pathlib import Path

from edgesmith.compress import finetune
from edgesmith.compress.config import AutotuneConfig
from edgesmith.core.artifacts import Artifact, ArtifactWriter, check_output_dir, read_artifact
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import DatasetRecord, Metrics
from edgesmith.core.outputs import mark_staging_dir, remove_stale_stage, seal_owned_dir
from edgesmith.core.progress import Reporter, stderr_reporter

SUMMARY = "autotune.json"


def quantize_within_budget(
    source: str | Path | Artifact,
    config: AutotuneConfig,
    out: str | Path,
    *,
    report: Reporter | None = None,
) -> Artifact:
    """Find the first int8 quantisation within ``config.max_accuracy_drop`` points of float.

    Args:
        source: a float Keras artifact.
        config: the budget, the QAT attempt's settings, how many ops may stay float.
        out: a new directory for the attempts and ``autotune.json``.
        report: receives progress lines, one per attempt.

    Returns:
        The chosen attempt's .tflite artifact (or the best one, when none met the budget;
        ``autotune.json`` then says ``"met": false``).

    Raises:
        EdgesmithError: for a non-Keras or QAT source or a used ``out``.
    """
    from edgesmith.compress import sensitivity
    from edgesmith.compress.quantization_aware import qat
    from edgesmith.export import export

    report = report or stderr_reporter()
    out = check_output_dir(out)
    src = finetune.load_source(source, data=config.data)
    work = out.with_name(out.name + ".partial")
    remove_stale_stage(work, out)  # an interrupted run of ours; anything else: exit 2
    work.mkdir(parents=True)
    mark_staging_dir(work, out, purpose="quantize attempts")
    reference = _keras_accuracy(src, config.max_eval)
    budget = config.max_accuracy_drop
    attempts: list[dict] = []

    def judge(name: str, artifact: Artifact, accuracy: float, **more) -> bool:
        drop = round(100 * (reference - accuracy), 3)
        met = drop <= budget
        attempts.append(
            {
                "name": name,
                "path": str(artifact.path.relative_to(work)),
                "accuracy": round(accuracy, 6),
                "drop_points": drop,
                "met": met,
                "size_bytes": artifact.metrics.size_bytes,
                **more,
            }
        )
        report(
            f"budget attempt {len(attempts)} {name}: int8 accuracy {accuracy:.4f}, "
            f"{drop:+.2f} points vs float {reference:.4f} (budget {budget}): "
            f"{'met' if met else 'not met'}"
        )
        return met

    try:
        export_options = {"calibration_samples": config.calibration_samples}
        if config.data:
            export_options["data"] = config.data
        done = False
        if "ptq" in config.attempts:
            (ptq,) = export(
                src.artifact.path,
                "tflite-int8",
                work / "ptq",
                report=report,
                allow_mismatch=True,
                **export_options,
            )
            done = judge("ptq-int8", ptq, _file_accuracy(ptq, src, config))
        if not done and "qat" in config.attempts:
            qat_keras = qat(src.artifact.path, config.qat, work / "qat", report=report)
            (qat_int8,) = export(
                qat_keras.path,
                "tflite-int8",
                work / "qat-export",
                report=report,
                allow_mismatch=True,
                **export_options,
            )
            done = judge(
                "qat-int8",
                qat_int8,
                _file_accuracy(qat_int8, src, config),
                keras_accuracy=qat_keras.metrics.accuracy,
            )
        if not done and "float" in config.attempts and config.max_float_layers:
            calibration = sensitivity.calibration_inputs(
                src.dataset, src.norm, config.calibration_samples
            )
            ranked = sensitivity.int8_sensitivity(src, _sensitivity_config(config), report)
            ranking = ranked["layers"]
            for count in range(1, min(config.max_float_layers, len(ranking)) + 1):
                chosen = ranking[:count]
                data = sensitivity.mixed_int8(src.model, calibration, [e["tensor"] for e in chosen])
                mixed = _write_mixed(work / f"float-{count}", data, src, chosen, config)
                done = judge(
                    f"ptq-int8 with {count} float op(s)",
                    mixed,
                    mixed.metrics.accuracy,
                    float_layers=[e["layer"] for e in chosen],
                )
                if done:
                    break
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if not attempts:
        shutil.rmtree(work, ignore_errors=True)
        raise EdgesmithError(
            f"quantize: no attempt could be made with attempts {list(config.attempts)} "
            "(no conv/dense layer to leave float?); add ptq or qat"
        )
    met = [a for a in attempts if a["met"]]
    best = met[0] if met else max(attempts, key=lambda a: a["accuracy"])
    summary = {
        "source": str(src.artifact.path),
        "source_id": src.artifact.id,
        "float_accuracy": reference,
        "max_accuracy_drop": budget,
        "met": bool(met),
        "chosen": best["name"],
        "chosen_path": best["path"],
        "attempts": attempts,
        "config": config.to_dict(),
    }
    (work / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    seal_owned_dir(work, purpose="quantize attempts")
    if out.is_dir():
        out.rmdir()
    os.replace(work, out)
    report(
        f"budget {'met' if met else 'NOT met'} by {best['name']} "
        f"({best['drop_points']:+.2f} points); attempts in {out}"
    )
    return read_artifact(out / best["path"])


def _keras_accuracy(src: finetune.Source, max_eval: int | None) -> float:
    """The float model's accuracy on exactly the images the attempts are measured on."""
    from edgesmith.tfkeras.evaluate import predict

    x, y = src.dataset.x_eval[:max_eval], src.dataset.y_eval[:max_eval]
    return round(float((predict(src.model, x, src.norm).argmax(axis=-1) == y).mean()), 6)


def _sensitivity_config(config: AutotuneConfig):
    from edgesmith.compress.config import SensitivityConfig

    return SensitivityConfig(
        mode="int8",
        max_eval=config.max_eval or 2000,
        calibration_samples=config.calibration_samples,
        data=config.data,
    )


def _file_accuracy(artifact: Artifact, src: finetune.Source, config: AutotuneConfig) -> float:
    """The exported file's accuracy, run by edgesmith's runtime on the eval split."""
    from edgesmith.runtime import evaluate, load

    model = load(artifact.path)
    x, y = src.dataset.x_eval[: config.max_eval], src.dataset.y_eval[: config.max_eval]
    return float(evaluate(model, x, y, batch_size=64)["accuracy"])


def _write_mixed(
    out: Path, data: bytes, src: finetune.Source, chosen: list[dict], config: AutotuneConfig
) -> Artifact:
    """Publish a mixed int8/float .tflite as an artifact (float I/O; the runtime normalises)."""
    from edgesmith.compress import sensitivity

    accuracy = sensitivity.tflite_accuracy(
        data, src.dataset, src.norm, max_eval=config.max_eval, labels=list(src.artifact.labels)
    )
    with ArtifactWriter(out) as writer:
        (writer.dir / "model.tflite").write_bytes(data)
        return writer.commit(
            model_files=["model.tflite"],
            stage="compress",
            technique="tflite-int8-mixed",
            fmt="tflite",
            config={
                "float_ops": [e["tensor"] for e in chosen],
                "calibration_samples": config.calibration_samples,
                "source": str(src.artifact.path),
            },
            input_spec=dataclasses.replace(src.artifact.input_spec, quantization=None),
            labels=src.artifact.labels,
            dataset=DatasetRecord.from_dict(src.dataset.describe()),
            metrics=Metrics(
                accuracy=round(accuracy, 6),
                num_eval=int(len(src.dataset.y_eval[: config.max_eval])),
                size_bytes=len(data),
                gzip_bytes=len(gzip.compress(data)),
                macs=src.artifact.metrics.macs,
                float_layers=tuple(e["layer"] for e in chosen),
            ),
            parent=src.artifact.id,
            output=src.artifact.output_spec,
        )


def unmet_budget(out: str | Path) -> str | None:
    """Why no attempt in ``out`` met the budget, from its ``autotune.json`` (None if one did)."""
    summary = json.loads((Path(out) / SUMMARY).read_text(encoding="utf-8"))
    if summary["met"]:
        return None
    best = min(attempt["drop_points"] for attempt in summary["attempts"])
    return (
        f"no attempt met --max-accuracy-drop {summary['max_accuracy_drop']}: the best, "
        f"{summary['chosen']}, dropped {best} points"
    )
