"""The embedded inference API: ``load(path)`` gives a :class:`Model` that takes raw pixels.

This is the part of edgesmith that goes into a user's app on the device: it needs numpy and one
runtime (LiteRT or onnxruntime), never TensorFlow. It reads the preprocessing and labels from
the artifact's manifest or the file's embedded metadata, so the app feeds camera pixels and gets
class probabilities without repeating the training code's normalisation.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.normalization import Normalization, parse_normalization
from edgesmith.core.wrappers import Closeable, forwarded
from edgesmith.runtime.preprocess import (
    as_batch,
    dequantize,
    looks_like_probabilities,
    pixels_to_input,
    softmax,
)
from edgesmith.runtime.providers import plan_tflite
from edgesmith.runtime.runner import MetadataWarning, Runner, TensorInfo
from edgesmith.runtime.source import ModelSource, locate

DEFAULT_BATCH = 128


@dataclasses.dataclass(eq=False)
class Model(Closeable):
    """A loaded .tflite or .onnx classifier with its preprocessing and labels.

    Build it with :func:`load`.

    Attributes:
        runner: the runtime session or interpreter that runs the file.
        source: the located file (``path``, ``artifact`` and ``format`` are its).
        normalization: how raw pixels become the input, or None for model-ready inputs.
        raw_input: the normalisation is folded into the file: it takes raw pixels.
        labels: class names in output order.
        output_kind: ``probabilities``, ``logits`` or ``None`` when unknown.
        macs: multiply-accumulates per image, or ``None``.
        metadata: where the preprocessing came from: ``manifest``, ``embedded`` or ``none``.
        path: the model file.
        artifact: the artifact directory, when there is one.
        format: ``tflite`` or ``onnx``.
        runtime: ``litert``, ``onnxruntime`` or ``tflm``.
        provider_used: where the model really runs: ``xnnpack``, ``cpu``, ``cuda``,
            ``delegate:...``.
        threads: threads asked of the runtime (``None``: its default).
        input_tensor: the input tensor's name, shape, dtype and quantisation.
        input_spec: the manifest-style input record, with the tensor's own quantisation.
    """

    runner: Runner
    source: ModelSource
    _: dataclasses.KW_ONLY
    normalization: Normalization | None
    raw_input: bool
    labels: list[str]
    output_kind: str | None
    macs: int | None
    metadata: str

    path = forwarded("source.file")
    artifact = forwarded("source.artifact")
    format = forwarded("source.format")
    runtime = forwarded("runner.runtime")
    provider_used = forwarded("runner.provider_used")
    threads = forwarded("runner.threads")
    input_tensor = forwarded("runner.input")

    @property
    def input_spec(self) -> dict[str, Any]:
        """The manifest-style input record, with the tensor's own quantisation parameters."""
        tensor = self.runner.input
        return {
            "shape": list(tensor.shape[1:]),
            "layout": "NHWC",
            "dtype": str(tensor.dtype),
            "normalization": self.normalization.to_dict() if self.normalization else None,
            "raw_input": self.raw_input,
            "quantization": tensor.quantization_record(),
        }

    def prepare(self, images: Any) -> np.ndarray:
        """Raw pixels (one image or a batch) to the model's input tensor (dtype included).

        Raises:
            EdgesmithError: for a shape that does not fit, a non-numeric dtype, or pixel values
                outside [0, 255].
        """
        pixels = as_batch(images, self.runner.input)
        return pixels_to_input(
            pixels, self.runner.input, normalization=self.normalization, raw_input=self.raw_input
        )

    def run(self, model_inputs: Any) -> np.ndarray:
        """Already-prepared inputs in the model's dtype to float32 (N, K) dequantised outputs.

        Raises:
            EdgesmithError: for a dtype or shape the input tensor does not take.
        """
        tensor = self.runner.input
        x = as_batch(model_inputs, tensor, where="model inputs")
        if x.dtype != tensor.dtype:
            floats = np.issubdtype(x.dtype, np.floating) and np.issubdtype(
                tensor.dtype, np.floating
            )
            if not floats:
                raise EdgesmithError(
                    f"model inputs: the model takes {tensor.dtype}. Received dtype {x.dtype} "
                    "(use predict() for raw pixels)"
                )
            x = x.astype(tensor.dtype)
        raw = self.runner.run(np.ascontiguousarray(x))
        return dequantize(raw, self.runner.output).reshape(len(x), -1)

    def predict(self, images: Any, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Raw pixels in, float32 (N, K) probabilities or logits (as the model gives) out.

        Args:
            images: uint8 or float pixels in [0, 255], shaped (N, H, W, C), (H, W, C), or
                without the channel axis for one-channel models.
            batch_size: images per runtime call (bounds memory for large inputs).
        """
        x = self.prepare(images)
        parts = [self.run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """Outputs of :meth:`predict` as probabilities (softmax over logits)."""
        if self.output_kind == "probabilities":
            return outputs
        if self.output_kind is None and looks_like_probabilities(outputs):
            return outputs
        return softmax(outputs)

    def classify(self, images: Any) -> list[tuple[str, float]]:
        """Top-1 label and its probability for each image."""
        probs = self.probabilities(self.predict(images))
        top = probs.argmax(axis=1)
        return [(self.labels[i], float(probs[row, i])) for row, i in enumerate(top)]

    def close(self) -> None:
        """Release the runtime session or interpreter."""
        self.runner.close()

    def __repr__(self) -> str:
        return (
            f"Model({str(self.path)!r}, format={self.format!r}, runtime={self.runtime!r}, "
            f"provider_used={self.provider_used!r}, labels={len(self.labels)})"
        )


def _normalization(value: dict | str | Normalization | None) -> Normalization | None:
    if value is None or isinstance(value, Normalization):
        return value
    if isinstance(value, str):
        return parse_normalization(value)
    return Normalization.from_dict(value)


def _check_threads(threads: int | None) -> None:
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise EdgesmithError(f"threads must be a whole number >= 1. Received: {threads!r}")


def _open_runner(source: ModelSource, threads, provider, xnnpack) -> Runner:
    if source.format == "tflite":
        plan = plan_tflite(provider, xnnpack)
        if plan.tflm:
            from edgesmith.runtime.tflm_runner import TFLMRunner

            return TFLMRunner(source.file)
        if plan.compiled:
            from edgesmith.runtime.compiled_runner import CompiledRunner

            return CompiledRunner(source.file, threads=threads, gpu=plan.compiled == "gpu")
        from edgesmith.runtime.litert_runner import LiteRTRunner

        return LiteRTRunner(source.file, threads=threads, plan=plan)
    from edgesmith.runtime.onnx_runner import OnnxRunner

    return OnnxRunner(source.file, threads=threads, provider=provider)


def _check_record_shape(record: dict, tensor: TensorInfo, where: str) -> None:
    shape = record.get("shape")
    if shape is None:
        return
    model = tensor.shape[1:]
    if len(shape) != len(model) or any(
        m is not None and m != s for m, s in zip(model, shape, strict=True)
    ):
        raise EdgesmithError(
            f"{where} says the input is {list(shape)} but the model's tensor is "
            f"{[d for d in model]}: the metadata does not belong to this model"
        )


def load(
    path: str | Path,
    *,
    threads: int | None = None,
    provider: str | None = None,
    xnnpack: bool = True,
    normalization: dict | str | Normalization | None = None,
) -> Model:
    """Load an exported model for inference.

    Args:
        path: an artifact directory, or a .tflite/.onnx file (with embedded metadata or not).
        threads: runtime threads; ``None`` leaves the runtime's default.
        provider: for .onnx ``cpu`` (default), ``cuda``, ``tensorrt`` (both fail when absent) or
            ``auto`` (the best present); for .tflite ``cpu``
            (XNNPACK per ``xnnpack``), ``xnnpack``, ``delegate:/path/lib.so``, or ``compiled``
            / ``compiled:gpu`` (LiteRT's CompiledModel API instead of the Interpreter), or
            ``tflm`` (TFLite Micro's interpreter: one image per invoke, reference kernels, the
            arena it allocated in ``model.runner.arena``; needs the ``mcu`` extra).
        xnnpack: use LiteRT's XNNPACK delegate (the default); off runs the builtin kernels.
        normalization: how raw pixels map to the model input (a record dict, a name such as
            ``unit``/``raw``, or ``scale=..,mean=..,std=..``); overrides the metadata, and is
            needed for a foreign file to take raw pixels.

    Returns:
        The loaded :class:`Model`.

    Raises:
        EdgesmithError: for a missing, truncated or foreign-format file, an unknown provider,
            bad threads, or metadata that does not fit the model.
    """
    _check_threads(threads)
    norm_override = _normalization(normalization)
    source = locate(path)
    runner = _open_runner(source, threads, provider, xnnpack)
    records, origin = source.records, "manifest"
    if records is None:
        records = runner.embedded_metadata()
        origin = "embedded" if records else "none"
    records = records or {}
    record = records.get("input") or {}
    where = f"{origin} of {source.file.name}"
    _check_record_shape(record, runner.input, where)
    if not runner.input.quantized and record.get("quantization"):
        # An ONNX integer input whose graph hides its scale: the record is all there is.
        q = record["quantization"]
        runner.input = dataclasses.replace(
            runner.input, scale=float(q["scale"]), zero_point=int(q["zero_point"])
        )
    raw_input = bool(record.get("raw_input", False)) and norm_override is None
    normalization = norm_override
    if normalization is None and record.get("normalization"):
        normalization = Normalization.from_dict(record["normalization"])
    outputs = runner.output.shape[-1] or (records.get("output") or {}).get("shape", [None])[-1]
    labels = records.get("labels")
    if labels is not None and outputs is not None and len(labels) != outputs:
        raise EdgesmithError(
            f"{where} lists {len(labels)} labels but the model has {outputs} outputs"
        )
    if labels is None:
        labels = [str(i) for i in range(outputs or 0)]
    if origin == "none" and norm_override is None:
        warnings.warn(
            f"{source.file.name} carries no edgesmith metadata: images are taken as model "
            "inputs as they are (pass a normalization for raw pixels), labels are class indices",
            MetadataWarning,
            stacklevel=2,
        )
    return Model(
        runner,
        source,
        normalization=normalization,
        raw_input=raw_input,
        labels=[str(label) for label in labels],
        output_kind=(records.get("output") or {}).get("kind"),
        macs=records.get("macs"),
        metadata=origin,
    )
