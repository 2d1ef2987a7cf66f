"""The ONNX Runtime backend: CPU by default, CUDA and TensorRT execution providers on request.

The session is created with only the providers this installation has (so onnxruntime adds no
warning of its own), and the providers the session really got are compared with the request:
a CUDA library that fails to load makes onnxruntime fall back to the CPU with nothing but a log
line, which would make a GPU benchmark silently report CPU numbers.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.safe_files import clip
from edgesmith.runtime import quiet  # noqa: F401  (sets ORT_DISABLE_TELEMETRY before the import)
from edgesmith.runtime.embedded_metadata import WHERE, read_onnx_metadata
from edgesmith.runtime.providers import fallback_warning, plan_onnx_providers, short_name
from edgesmith.runtime.runner import ProviderFallbackWarning, TensorInfo, batch_dim

ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


def _tensor(arg, quantization: tuple[float, int] | None) -> TensorInfo:
    if arg.type not in ONNX_DTYPES:
        raise EdgesmithError(
            f"tensor {arg.name!r} has type {arg.type}, which edgesmith cannot feed"
        )
    shape = (batch_dim(arg.shape[0]) if arg.shape else None,)
    shape += tuple(d if isinstance(d, int) and d > 0 else None for d in arg.shape[1:])
    scale, zero_point = quantization if quantization else (None, 0)
    return TensorInfo(arg.name, shape, np.dtype(ONNX_DTYPES[arg.type]), scale, zero_point)


class OnnxRunner:
    """Run an .onnx file with onnxruntime.

    Args:
        path: the .onnx file.
        threads: intra-op threads (``None``: onnxruntime's default, one per core).
        provider: ``cpu`` (default), ``cuda`` or ``tensorrt``.

    Raises:
        EdgesmithError: for a missing, truncated or foreign file, or an unknown provider.
    """

    runtime = "onnxruntime"

    def __init__(self, path: Path, *, threads: int | None, provider: str | None):
        import onnxruntime as ort

        from edgesmith.runtime.onnx_graph import io_quantization

        self.path = Path(path)
        self.threads = threads
        plan = plan_onnx_providers(provider, ort.get_available_providers())
        if plan.warning:
            warnings.warn(plan.warning, ProviderFallbackWarning, stacklevel=4)
        options = ort.SessionOptions()
        options.log_severity_level = 4  # a load error is logged too: our one line carries it
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(self.path), options, providers=list(plan.providers)
            )
        except Exception as exc:  # onnxruntime's pybind errors share no base but Exception
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EdgesmithError(  # ONNX Runtime's own line can run to hundreds of characters
                f"{self.path} is not a readable ONNX model (truncated or another format?): "
                f"{clip(text, 120)}"
            ) from None
        used = self._session.get_providers()
        self.provider_used = short_name(used[0]) if used else "cpu"
        if not plan.warning:
            fallback = fallback_warning(plan.requested, used)
            if fallback and self.provider_used == "cpu":  # a GPU was asked for, none serves
                raise EdgesmithError(f"{self.path.name}: {fallback}; or pass --provider auto")
            if fallback:
                warnings.warn(fallback, ProviderFallbackWarning, stacklevel=4)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1:
            raise EdgesmithError(
                f"{self.path}: expected a classifier with one image input; it has {len(inputs)}"
            )
        in_q = out_q = None
        integer = ("tensor(int8)", "tensor(uint8)", "tensor(int16)")
        if inputs[0].type in integer or outputs[0].type in integer:
            in_q, out_q = io_quantization(self.path, inputs[0].name, outputs[0].name)
        self.input = _tensor(inputs[0], in_q)
        self.output = _tensor(outputs[0], out_q)
        self._outputs = [outputs[0].name]

    def embedded_metadata(self) -> dict | None:
        """The edgesmith document embedded in the file, or ``None``."""
        metadata = self._session.get_modelmeta().custom_metadata_map
        return read_onnx_metadata(metadata, where=f"{self.path.name}: {WHERE}")

    def _chunks(self, x: np.ndarray):
        fixed = self.input.shape[0]
        if fixed is None or fixed == len(x):
            yield x
            return
        if len(x) % fixed:
            raise EdgesmithError(
                f"{self.path.name} takes batches of exactly {fixed}; received {len(x)} inputs"
            )
        yield from (x[i : i + fixed] for i in range(0, len(x), fixed))

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference per fixed-size chunk of ``x``; the raw output tensor."""
        parts = [self._session.run(self._outputs, {self.input.name: c})[0] for c in self._chunks(x)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def step(self, x: np.ndarray) -> Callable[[], object]:
        """Bind the feed once and return ``session.run`` on it: the bare loop's own call."""
        if self.input.shape[0] not in (None, len(x)):
            raise EdgesmithError(
                f"{self.path.name} takes batches of exactly {self.input.shape[0]}; "
                f"cannot time batch {len(x)}"
            )
        return functools.partial(self._session.run, self._outputs, {self.input.name: x})

    def close(self) -> None:
        """Drop the session."""
        self._session = None
