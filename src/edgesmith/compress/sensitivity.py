"""Per-layer sensitivity: which layers cost accuracy when compressed, measured one at a time.

``int8``: the model is converted to int8 by the TFLite converter itself (per-channel weights,
calibrated activations), and TensorFlow's quantisation debugger reports each op's error against
float (RMSE over the quantisation scale); then each conv/dense op in turn is left float
(``denylisted_nodes``) and the exported file's accuracy is measured with edgesmith's runtime, so
the accuracy a layer costs is read off the real integer file, not a Keras simulation (tfmot #368,
#974: the two disagree). ``prune``: each prunable layer alone is magnitude-pruned to each
sparsity, without fine-tuning, and the Keras model's accuracy measured. Either way the result is
a JSON file, a Markdown table and, when matplotlib is installed, a PNG plot; the accuracy budget
(:mod:`edgesmith.compress.autotune`) reuses the int8 machinery to leave the most sensitive
layers in float. The ``int8`` document also carries a LiteRT Quantizer recipe
(``litert_recipe``): W8A8 everywhere and 16-bit activations for the layers that won back the
most (``edgesmith.export.mixed_recipe``), which ``export --format tflite-recipe
--quantizer-recipe FILE`` applies to the float file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgesmith.compress import finetune, measure
from edgesmith.compress.config import SensitivityConfig
from edgesmith.core.artifacts import Artifact
from edgesmith.core.datasets import Dataset
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.normalization import Normalization
from edgesmith.core.outputs import check_files_writable, record_written
from edgesmith.core.progress import Reporter, stderr_reporter
from edgesmith.runtime import plots_available
from edgesmith.tfkeras.backend import keras, quiet_native_stderr, tf

KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
PLOT_HINT = 'the plot needs matplotlib: pip install "edgesmith[plots]"'
HIGHLIGHT = 5  # pruning lines drawn in colour and named in the legend; the rest are grey


@contextlib.contextmanager
def quiet_converter() -> Iterator[None]:
    """The converter prints to stdout and stderr from C++ and warns from Python: silence all."""
    with quiet_native_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys.stdout.flush()
        saved = os.dup(1)
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 1)
            try:
                yield
            finally:
                sys.stdout.flush()
                os.dup2(saved, 1)
                os.close(saved)


def calibration_inputs(dataset: Dataset, norm: Normalization, count: int):
    """Normalised calibration inputs: export's own pick of ``count`` training images."""
    from edgesmith.export import calibration_inputs as model_inputs
    from edgesmith.export import calibration_pixels

    return model_inputs(calibration_pixels(dataset.x_train, count), norm, raw_input=False)


def _converter(model: keras.Model, calibration: np.ndarray, *, float_fallback: bool = False):
    """Export's int8 converter (float I/O, so every variant is compared through one entry)."""
    from edgesmith.export import int8_converter

    converter = int8_converter(model, calibration, float_fallback=float_fallback)
    return converter, converter.representative_dataset


def quantization_errors(model: keras.Model, calibration: np.ndarray) -> list[dict]:
    """Each int8 op's error against float, from TensorFlow's quantisation debugger.

    Returns:
        One record per op: ``op``, ``tensor`` (the float model's tensor name, usable as a
        denylisted node), ``layers`` (the Keras conv/dense layers fused into it) and
        ``rmse_over_scale`` (about 0.29 is the rounding floor; larger means the range is
        stretched by outliers).
    """
    converter, representative = _converter(model, calibration)
    with quiet_converter():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative
        )
        debugger.run()
        dump = io.StringIO()
        debugger.layer_statistics_dump(dump)
    names = [name for name, _, _ in measure.kernels(model)]
    records = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        tensor = row["tensor_name"]
        parts = tensor.split(";")
        layers = [n for n in names if any(f"/{n}/" in p or p.endswith(f"/{n}") for p in parts)]
        scale = float(row["scale"] or 0.0)
        mse = float(row["mean_squared_error"] or 0.0)
        records.append(
            {
                "op": row["op_name"],
                "tensor": tensor,
                "layers": layers,
                "rmse_over_scale": round(float(np.sqrt(mse)) / scale, 4) if scale else None,
            }
        )
    return records


def mixed_int8(model: keras.Model, calibration: np.ndarray, float_tensors: list[str]) -> bytes:
    """An int8 .tflite with the ops producing ``float_tensors`` left float (float I/O).

    With no float tensors this is the plain post-training int8 conversion (float I/O, so that
    all variants are compared through the same entry and exit).

    Raises:
        EdgesmithError: when the converter rejects the model.
    """
    converter, representative = _converter(model, calibration, float_fallback=bool(float_tensors))
    try:
        with quiet_converter():
            if not float_tensors:
                return bytes(converter.convert())
            options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=list(float_tensors)
            )
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=representative, debug_options=options
            )
            return bytes(debugger.get_nondebug_quantized_model())
    except Exception as exc:  # ConverterError, ValueError, RuntimeError: all mean "rejected"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgesmithError(f"the TFLite converter rejected the model: {first}") from None


def tflite_accuracy(
    data: bytes,
    dataset: Dataset,
    norm: Normalization,
    *,
    max_eval: int | None = None,
    labels: list[str] | None = None,
) -> float:
    """Top-1 accuracy of a .tflite file on the eval split, run by edgesmith's runtime."""
    from edgesmith.runtime import evaluate, load

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.tflite"
        path.write_bytes(data)
        model = load(path, threads=None, normalization=norm.to_dict())
        x, y = dataset.x_eval[:max_eval], dataset.y_eval[:max_eval]
        return float(evaluate(model, x, y, class_names=labels, batch_size=64)["accuracy"])


def keras_accuracy(
    model: keras.Model, dataset: Dataset, norm: Normalization, *, max_eval: int | None = None
) -> float:
    """Top-1 accuracy of a Keras model on the first ``max_eval`` eval images."""
    from edgesmith.tfkeras.evaluate import predict

    x, y = dataset.x_eval[:max_eval], dataset.y_eval[:max_eval]
    return float((predict(model, x, norm).argmax(axis=-1) == y).mean())


def int8_sensitivity(src: finetune.Source, config: SensitivityConfig, report: Reporter) -> dict:
    """Full-int8 accuracy, and for each conv/dense op the accuracy with that op left float.

    ``src`` is the loaded source: its model, the data measured on and the model's normalisation.
    """
    model, dataset, norm = src.model, src.dataset, src.norm
    calibration = calibration_inputs(dataset, norm, config.calibration_samples)
    errors = quantization_errors(model, calibration)
    full = tflite_accuracy(
        mixed_int8(model, calibration, []), dataset, norm, max_eval=config.max_eval
    )
    report(f"sensitivity int8: full int8 accuracy {full:.4f} on {config.max_eval} images max")
    layers = []
    for record in errors:
        if record["op"] not in KERNEL_OPS or not record["layers"]:
            continue
        data = mixed_int8(model, calibration, [record["tensor"]])
        accuracy = tflite_accuracy(data, dataset, norm, max_eval=config.max_eval)
        entry = {
            "layer": record["layers"][-1],
            "fused": record["layers"],
            "op": record["op"],
            "tensor": record["tensor"],
            "rmse_over_scale": record["rmse_over_scale"],
            "accuracy_with_layer_float": round(accuracy, 6),
            "gain_points": round(100 * (accuracy - full), 3),
        }
        layers.append(entry)
        report(
            f"  {entry['layer']:<28} float: {accuracy:.4f} ({entry['gain_points']:+.2f} points)"
            f"  rmse/scale {entry['rmse_over_scale']}"
        )
    layers.sort(key=lambda e: (-e["gain_points"], -(e["rmse_over_scale"] or 0)))
    return {"int8_accuracy": round(full, 6), "layers": layers, "ops": errors}


def prune_sensitivity(src: finetune.Source, config: SensitivityConfig, report: Reporter) -> dict:
    """For each conv/dense layer alone, the accuracy drop at each sparsity (no fine-tuning).

    ``src`` is the loaded source, as for :func:`int8_sensitivity`; its model's weights are
    restored after each layer's sweep.
    """
    model, dataset, norm = src.model, src.dataset, src.norm

    def accuracy() -> float:
        return keras_accuracy(model, dataset, norm, max_eval=config.max_eval)

    base = accuracy()
    report(f"sensitivity prune: dense accuracy {base:.4f}")
    layers = []
    for layer in model.layers:
        inner = measure.unwrap(layer)
        if type(inner).__name__ not in measure.KERNEL_LAYERS or not inner.weights:
            continue
        weights = inner.get_weights()
        kernel = weights[0]
        if kernel.size < config.min_weights:
            continue
        drops = {}
        for sparsity in config.sparsities:
            cut = np.quantile(np.abs(kernel), sparsity)
            inner.set_weights([np.where(np.abs(kernel) <= cut, 0, kernel), *weights[1:]])
            drops[str(sparsity)] = round(100 * (base - accuracy()), 3)
        inner.set_weights(weights)
        layers.append({"layer": layer.name, "weights": int(kernel.size), "drop_points": drops})
        report(f"  {layer.name:<28} " + "  ".join(f"{s}: {d:+.2f}" for s, d in drops.items()))
    worst = str(config.sparsities[-1])
    layers.sort(key=lambda e: -e["drop_points"][worst])
    return {"accuracy": round(base, 6), "layers": layers}


def analyse_sensitivity(
    source: str | Path | Artifact,
    config: SensitivityConfig,
    out: str | Path,
    *,
    report: Reporter | None = None,
    plot: bool = True,
    overwrite: bool = False,
) -> dict:
    """Measure each layer's sensitivity and write it as JSON, a Markdown table and a plot.

    Args:
        source: a float Keras artifact.
        config: ``int8`` or ``prune`` mode and its settings.
        out: the JSON file to write; ``.md`` beside it gets the table and ``.png`` the plot.
        report: receives progress lines, the files written, and a line when the plot is
            skipped because matplotlib is not installed.
        plot: draw the PNG (when matplotlib is installed).
        overwrite: replace existing files edgesmith did not write (or that changed since); by
            default they are refused before any work, since ``--out README.json`` would
            otherwise overwrite the user's ``README.md``.

    Returns:
        The JSON document.

    Raises:
        EdgesmithError: for a non-Keras or QAT source, a model the converter rejects, or an
            output file edgesmith did not write (without ``overwrite``).
    """
    report = report or stderr_reporter()
    out = Path(out)
    if out.suffix.lower() != ".json":
        raise EdgesmithError(f"sensitivity writes a .json file. Received: {out}")
    check_files_writable(output_files(out), overwrite=overwrite)
    src = finetune.load_source(source, data=config.data)
    if config.mode == "int8":
        result = int8_sensitivity(src, config, report)
        # the whole int8 gap on the images the per-layer gains were measured on
        same = keras_accuracy(src.model, src.dataset, src.norm, max_eval=config.max_eval)
        result = {"float_accuracy_same_images": round(same, 6), **result}
    else:
        result = prune_sensitivity(src, config, report)
    document = {
        "source": str(src.artifact.path),
        "source_id": src.artifact.id,
        "dataset": src.dataset.spec,
        "float_accuracy": src.accuracy,
        "num_eval": len(src.dataset.y_eval[: config.max_eval]),
        "config": config.to_dict(),
        **result,
    }
    if config.mode == "int8":
        from edgesmith.export import mixed_recipe

        document["litert_recipe"] = mixed_recipe(document)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(out)
    table = sensitivity_table(document)
    written = [out, out.with_suffix(".md")]
    if plot and plots_available():
        written.append(write_plot(document, out.with_suffix(".png")))
    elif plot:
        report(f"sensitivity: plot skipped: {PLOT_HINT}")
    image = f"\n\n![sensitivity]({written[2].name})" if len(written) > 2 else ""
    written[1].write_text(table + image + "\n")
    for path in written:
        record_written(path)  # so that the next run may replace them while unchanged
    report(table)
    report("sensitivity: wrote " + ", ".join(str(path) for path in written))
    return document


def output_files(out: str | Path) -> list[Path]:
    """The files a run writes for ``out``: the JSON, the Markdown table and the PNG plot."""
    out = Path(out)
    return [out, out.with_suffix(".md"), out.with_suffix(".png")]


def sensitivity_table(document: dict) -> str:
    """A Markdown table of the document's layers, most sensitive first."""
    mode = document["config"]["mode"]
    if mode == "int8":
        lines = [
            f"full int8 accuracy {document['int8_accuracy']:.4f}; "
            f"float {document['float_accuracy']}" + _same_images(document),
            "",
            "| layer | op | rmse/scale | accuracy with it float | gain (points) |",
            "|---|---|---|---|---|",
        ]
        for e in document["layers"]:
            lines.append(
                f"| {e['layer']} | {e['op']} | {e['rmse_over_scale']} | "
                f"{e['accuracy_with_layer_float']:.4f} | {e['gain_points']:+.2f} |"
            )
        return "\n".join(lines + _recipe_lines(document))
    sparsities = [str(s) for s in document["config"]["sparsities"]]
    lines = [
        f"dense accuracy {document['accuracy']:.4f}; drop in points when one layer is pruned",
        "",
        "| layer | weights | " + " | ".join(sparsities) + " |",
        "|---|---|" + "---|" * len(sparsities),
    ]
    for e in document["layers"]:
        drops = " | ".join(f"{e['drop_points'][s]:+.2f}" for s in sparsities)
        lines.append(f"| {e['layer']} | {e['weights']:,} | {drops} |")
    return "\n".join(lines)


def write_plot(documents: dict | list[dict], path: str | Path) -> Path:
    """Draw sensitivity documents as a PNG, one panel per document, side by side.

    An ``int8`` document becomes horizontal bars, most sensitive layer on top: the accuracy
    won back by leaving that layer alone in float. A ``prune`` document becomes one line per
    layer of accuracy against that layer's sparsity, the most sensitive few in colour.

    Args:
        documents: one document from :func:`analyse_sensitivity`, or several (for example the
            ``int8`` and the ``prune`` run of one model) to draw in one figure.
        path: the PNG to write.

    Returns:
        ``path``.

    Raises:
        EdgesmithError: when matplotlib is not installed (the message says how to get it).
    """
    if not plots_available():
        raise EdgesmithError(PLOT_HINT)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    documents = [documents] if isinstance(documents, dict) else list(documents)
    rows = max(len(d["layers"]) for d in documents)
    figure = Figure(figsize=(7 * len(documents), max(4.5, 1.6 + 0.32 * rows)), dpi=120)
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, len(documents), squeeze=False)[0]
    for document, axes in zip(documents, panels, strict=True):
        if document["config"]["mode"] == "int8":
            _int8_panel(axes, document)
        else:
            _prune_panel(axes, document)
    source = documents[0]
    figure.suptitle(f"{Path(source['source']).name} on {source['dataset']}", fontsize=11)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def _recipe_lines(document: dict) -> list[str]:
    """The mixed recipe in words, under the int8 table."""
    mixed = document.get("litert_recipe")
    if not mixed:
        return []
    promoted = ", ".join(p["layer"] for p in mixed["promoted"]) or "none (no layer gained)"
    return [
        "",
        f"LiteRT Quantizer mixed recipe (litert_recipe): W8A8, 16-bit activations for "
        f"{promoted}; export --format tflite-recipe --quantizer-recipe THIS.json",
    ]


def _same_images(document: dict) -> str:
    same = document.get("float_accuracy_same_images")
    count = document.get("num_eval")
    return f" ({same:.4f} on the same {count} images)" if same is not None and count else ""


def _resolution(document: dict) -> str:
    count = document.get("num_eval")
    return f"{count:,} eval images, 1 image = {100 / count:.2g} points" if count else ""


def _int8_panel(axes, document: dict) -> None:
    layers = document["layers"]  # most sensitive first
    gains = [e["gain_points"] for e in layers]
    count = document.get("num_eval")
    rows = range(len(layers))
    axes.barh(rows, gains, color=["tab:red" if g > 0 else "tab:gray" for g in gains], height=0.7)
    axes.set_yticks(rows, [e["layer"] for e in layers], fontsize=8)
    axes.invert_yaxis()
    axes.axvline(0, color="k", lw=0.8)
    for row, entry in zip(rows, layers, strict=True):
        gain = entry["gain_points"]
        label = f"{gain:+.2f}"
        if count:
            label += f" ({round(gain * count / 100):+d} img)"
        if entry["rmse_over_scale"] is not None:
            label += f"  rmse/scale {entry['rmse_over_scale']:.2f}"
        axes.annotate(
            label,
            (max(gain, 0), row),
            textcoords="offset points",
            xytext=(4, 0),
            va="center",
            fontsize=7,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
    title = f"int8 sensitivity: full int8 top-1 {100 * document['int8_accuracy']:.2f}%"
    reach = [0.1, *gains]
    same = document.get("float_accuracy_same_images")
    if same is not None:
        gap = 100 * (same - document["int8_accuracy"])
        reach.append(gap)
        axes.axvline(gap, color="tab:blue", ls="--", lw=1.2, label=f"float - full int8: {gap:+.2f}")
        axes.legend(loc="lower right", fontsize=8)
        title += f", float {100 * same:.2f}%"
    span = max(reach) - min(0, *gains)
    axes.set_xlim(min(0, *gains) - 0.05 * span, max(reach) + 0.8 * span)
    axes.set_xlabel(
        "accuracy won back by leaving only this layer float (percentage points)\n"
        + _resolution(document)
    )
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3, axis="x")


def _prune_panel(axes, document: dict) -> None:
    sparsities = [str(s) for s in document["config"]["sparsities"]]
    x = [0.0] + [100 * float(s) for s in sparsities]
    dense = 100 * document["accuracy"]
    layers = document["layers"]  # most sensitive first, at the highest sparsity
    top = min(HIGHLIGHT, len(layers))
    for entry in layers[top:]:
        y = [dense] + [dense - entry["drop_points"][s] for s in sparsities]
        axes.plot(x, y, color="tab:gray", alpha=0.5, lw=1, marker=".", zorder=1)
    for rank, entry in enumerate(layers[:top]):
        y = [dense] + [dense - entry["drop_points"][s] for s in sparsities]
        axes.plot(
            x,
            y,
            color=f"C{rank}",
            lw=2,
            marker="o",
            ms=4,
            zorder=3,
            label=f"{entry['layer']} ({entry['weights']:,} weights)",
        )
    if len(layers) > top:
        axes.plot([], [], color="tab:gray", alpha=0.5, lw=1, label=f"{len(layers) - top} others")
    axes.axhline(dense, color="k", ls=":", lw=1, zorder=0)
    axes.set_xticks(x, [f"{v:g}" for v in x])
    axes.set_xlabel("sparsity of that one layer's kernel (%)\n" + _resolution(document))
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_title(
        f"pruning one layer at a time (magnitude, no fine-tuning); dense {dense:.2f}%",
        fontsize=10,
    )
    axes.legend(
        loc="lower left",
        fontsize=8,
        title=f"ranked by the drop at {x[-1]:g}%",
        title_fontsize=8,
    )
    axes.grid(alpha=0.3)
