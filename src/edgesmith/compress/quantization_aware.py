"""Quantization-aware training (tfmot): fake-quantised int8 fine-tuning, per-channel conv weights.

tfmot's ``quantize_model`` refuses a whole model when one layer has no int8 rule (Rescaling,
custom layers: its issues #647, #756). Here each layer is annotated on its own: layers tfmot can
quantise are annotated, the others stay float (an annotated fallback, named in the progress lines
and the manifest), and only a model tfmot cannot wrap at all (subclassed, or models nested inside
models) is refused, naming the layer. A pruned source can keep its zeros (tfmot's
pruning-preserving scheme, collaborative optimisation), and the sparsity after QAT is measured,
not assumed (tfmot PRs #720/#721: it used to drift). The model is saved as ``model.h5``
(a tfmot QAT model saved as .keras does not reload) with ``"qat": true`` in the manifest.
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.compress import finetune, measure
from edgesmith.compress.config import QatConfig
from edgesmith.compress.pruning import check_wrappable
from edgesmith.compress.source import source_sparsity
from edgesmith.core.artifacts import Artifact, check_output_dir
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import Quantization
from edgesmith.core.progress import Reporter, stderr_reporter
from edgesmith.tfkeras.backend import keras
from edgesmith.tfkeras.model_stats import count_macs, count_params
from edgesmith.tfkeras.tfmot import tfmot

quantization = tfmot.quantization.keras
# Layers the registry does not list but tfmot's graph transforms quantise (BatchNorm is folded
# into the conv before it by the converter; its annotation lets the Conv+BN patterns match).
TRANSFORM_HANDLED = ("BatchNormalization",)


def annotate(
    model: keras.Model, skip_layers: tuple[str, ...] = ()
) -> tuple[keras.Model, dict[str, str]]:
    """Annotate every layer tfmot can quantise; leave the rest float.

    Returns:
        The annotated clone, and ``{layer name: why it stays float}``.

    Raises:
        EdgesmithError: for a subclassed model, a nested model (naming the layer), or an
            unknown ``skip_layers`` name.
    """
    check_wrappable(model)
    names = {layer.name for layer in model.layers}
    for name in skip_layers:
        if name not in names:
            raise EdgesmithError(
                f"skip_layers: the model has no layer {name!r}; its layers are "
                f"{', '.join(sorted(names))}"
            )
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            raise EdgesmithError(
                f"layer {layer.name!r} ({type(layer).__name__}) is a model inside the model; "
                "tfmot cannot quantise nested models: rebuild it as one flat functional model"
            )
    registry = quantization.default_8bit.Default8BitQuantizeRegistry()
    floats: dict[str, str] = {}

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if layer.name in skip_layers:
            floats[layer.name] = f"{type(layer).__name__}: skip_layers"
            return fresh
        if not registry.supports(layer) and type(layer).__name__ not in TRANSFORM_HANDLED:
            floats[layer.name] = f"{type(layer).__name__}: tfmot has no int8 rule for it"
            return fresh
        return quantization.quantize_annotate_layer(fresh)

    annotated = keras.models.clone_model(model, clone_function=clone)
    by_name = {measure.unwrap(layer).name: measure.unwrap(layer) for layer in annotated.layers}
    for layer in model.layers:
        if layer.weights:
            by_name[layer.name].set_weights(layer.get_weights())
    return annotated, floats


def quantize(
    model: keras.Model, *, skip_layers: tuple[str, ...] = (), preserve_sparsity: bool = False
) -> tuple[keras.Model, dict[str, str]]:
    """Wrap a float model for QAT.

    Returns:
        The QAT model and the layers left in float with their reasons.

    Raises:
        EdgesmithError: when tfmot cannot apply quantisation, naming the layer it stopped at.
    """
    annotated, floats = annotate(model, skip_layers)
    scheme = (
        tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        if preserve_sparsity
        else quantization.default_8bit.Default8BitQuantizeScheme()
    )
    try:
        with quantization.quantize_scope():
            quantized = quantization.quantize_apply(annotated, scheme)
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EdgesmithError(
            f"tfmot cannot quantise this model: {text}; leave the layer named there in float "
            "with skip_layers"
        ) from None
    return quantized, floats


def qat(
    source: str | Path | Artifact,
    config: QatConfig,
    out: str | Path,
    *,
    report: Reporter | None = None,
) -> Artifact:
    """Fine-tune a Keras artifact with int8 fake quantisation and write the QAT artifact.

    Args:
        source: a float Keras artifact (trained, pruned, clustered, distilled...).
        config: fine-tuning settings, ``preserve_sparsity`` and layers to keep float.
        out: the new artifact directory.
        report: receives progress lines.

    Returns:
        The artifact (``model.h5``, ``"qat": true``), whose accuracy is the fake-quantised
        Keras model's; export it to ``tflite-int8`` to measure the integer file.

    Raises:
        EdgesmithError: for a QAT or non-Keras source, or a model tfmot cannot wrap.
    """
    report = report or stderr_reporter()
    check_output_dir(out)
    src = finetune.load_source(source, data=config.data)
    before = measure.sparsity_report(src.model)
    parent_sparsity = source_sparsity(src.artifact)
    if parent_sparsity > 0.3 and not config.preserve_sparsity:
        report(
            f"note: the source is {parent_sparsity:.0%} sparse; QAT without --preserve-sparsity "
            "will fill its zeros in"
        )
    model, floats = quantize(
        src.model, skip_layers=config.skip_layers, preserve_sparsity=config.preserve_sparsity
    )
    for name, why in floats.items():
        report(f"qat: layer {name!r} stays float ({why})")
    wrapped = sum(isinstance(layer, quantization.QuantizeWrapperV2) for layer in model.layers)
    report(
        f"qat: int8 fake quantisation (per-channel conv weights, per-tensor activations) "
        f"on {wrapped} "
        f"layers{', sparsity preserved' if config.preserve_sparsity else ''}"
    )
    history = finetune.fit(model, src, config, label="qat", report=report)
    metrics = finetune.measure(model, src)
    # The deployed model has the source's weights and MACs; the wrappers' quantiser variables
    # (ranges) are not parameters of the integer file.
    metrics["params_with_quantizers"] = metrics["params"]
    metrics["params"] = count_params(src.model)
    metrics["macs"] = count_macs(src.model)
    after = measure.sparsity_report(model)
    metrics.update(after)
    metrics["sparsity_source"] = before["sparsity"]
    if config.preserve_sparsity:
        drift = {
            name: round(after["sparsity_per_layer"][name] - value, 6)
            for name, value in before["sparsity_per_layer"].items()
            if name in after["sparsity_per_layer"] and value > 0
        }
        metrics["sparsity_drift_per_layer"] = drift
        report(
            f"qat: sparsity {before['sparsity']:.3f} before, {after['sparsity']:.3f} after "
            f"(largest drift {min(drift.values(), default=0.0):+.4f})"
        )
    scheme = Quantization(
        scheme="tfmot default 8-bit"
        + (" (pruning-preserving)" if config.preserve_sparsity else ""),
        weights="int8 symmetric, per-channel for convolutions, per-tensor for dense",
        activations="int8 asymmetric per-tensor, ranges learned in training",
        float_layers=dict(floats),
    )
    return finetune.publish(
        out,
        model,
        src,
        technique="qat",
        config=finetune.resolved_config(config, src),
        metrics=metrics,
        qat=True,
        quantization=scheme,
        model_file=finetune.H5_FILE,
        history=history,
        report=report,
    )
