"""The LiteRT backend: ``ai_edge_litert.interpreter.Interpreter``, XNNPACK by default.

LiteRT's Python interpreter is TensorFlow Lite without TensorFlow. Batches of any size are run
by resizing the input tensor (and re-allocating) only when the batch size changes, so a timing
loop at a fixed batch pays nothing extra.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime.embedded_metadata import WHERE, read_tflite_metadata
from edgesmith.runtime.providers import TflitePlan
from edgesmith.runtime.quiet import quiet_native_stderr
from edgesmith.runtime.runner import (
    ProviderFallbackWarning,
    TensorInfo,
    batch_dim,
    quantization_from_pair,
)

TFLITE_IDENTIFIER = b"TFL3"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _tensor(detail: dict) -> TensorInfo:
    signature = detail.get("shape_signature", detail["shape"])
    shape = (batch_dim(signature[0]), *(int(d) for d in signature[1:]))
    scale, zero_point = quantization_from_pair(*detail["quantization"])
    return TensorInfo(detail["name"], shape, np.dtype(detail["dtype"]), scale, zero_point)


def _check_delegate_library(path: str) -> None:
    """Refuse a delegate library that cannot load before LiteRT tries it.

    LiteRT's ``Delegate`` fails half-constructed on such a library and its destructor then
    prints an "Exception ignored" traceback on the user's terminal.

    Raises:
        EdgesmithError: naming the library and why it cannot be used.
    """
    import ctypes

    try:
        library = ctypes.CDLL(path)
    except OSError as exc:
        raise EdgesmithError(f"cannot load the delegate {path}: {_first_line(exc)}") from None
    if not hasattr(library, "tflite_plugin_create_delegate"):
        raise EdgesmithError(
            f"cannot load the delegate {path}: it is not a TFLite external delegate "
            "(no tflite_plugin_create_delegate symbol)"
        )


class LiteRTRunner:
    """Run a .tflite file with the LiteRT interpreter.

    Args:
        path: the .tflite file.
        threads: interpreter threads (``None``: LiteRT's default).
        plan: XNNPACK on/off and an optional external delegate (see ``providers.plan_tflite``).

    Raises:
        EdgesmithError: when the file is missing, is not a TFLite flatbuffer, is truncated, or
            the delegate cannot be loaded.
    """

    runtime = "litert"

    def __init__(self, path: Path, *, threads: int | None, plan: TflitePlan):
        self.path = Path(path)
        self.threads = threads
        head = self.path.read_bytes()[:8]
        if head[4:8] != TFLITE_IDENTIFIER:
            raise EdgesmithError(
                f"{self.path} is not a TFLite model (no TFL3 identifier): expected a .tflite "
                "flatbuffer, an .onnx file or an artifact directory"
            )
        self.provider_used = plan.label
        try:
            self._interpreter = self._build(plan)
        except RuntimeError as exc:
            if not plan.xnnpack or plan.delegate:
                raise EdgesmithError(
                    f"{self.path}: LiteRT cannot prepare it: {_first_line(exc)}"
                ) from None
            # Sparse int8 models fail to prepare under XNNPACK but run on the builtin kernels.
            warnings.warn(
                f"{self.path.name}: XNNPACK could not prepare the model ({_first_line(exc)}); "
                "running on LiteRT's builtin CPU kernels",
                ProviderFallbackWarning,
                stacklevel=4,
            )
            plan = TflitePlan(False, None)
            self.provider_used = plan.label
            try:  # a custom op or a bad tensor index fails on the builtin kernels too
                self._interpreter = self._build(plan)
            except RuntimeError as again:
                raise EdgesmithError(
                    f"{self.path}: LiteRT cannot prepare it: {_first_line(again)}"
                ) from None
        try:
            inputs = self._interpreter.get_input_details()
            outputs = self._interpreter.get_output_details()
        except (ValueError, RuntimeError, IndexError) as exc:
            raise EdgesmithError(
                f"{self.path}: LiteRT cannot read its input/output tensors: {_first_line(exc)}"
            ) from None
        if len(inputs) != 1 or len(outputs) < 1:
            raise EdgesmithError(
                f"{self.path}: expected a classifier with one image input and an output; it has "
                f"{len(inputs)} input(s) and {len(outputs)} output(s)"
            )
        self._in_index = inputs[0]["index"]
        self._out_index = outputs[0]["index"]
        self.input = _tensor(inputs[0])
        self.output = _tensor(outputs[0])
        self._batch = int(inputs[0]["shape"][0])
        self._fixed_batch: int | None = None

    def _build(self, plan: TflitePlan):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType, load_delegate

        delegates = None
        if plan.delegate:
            _check_delegate_library(plan.delegate)
            try:
                delegates = [load_delegate(plan.delegate)]
            except (ValueError, OSError, RuntimeError) as exc:
                raise EdgesmithError(
                    f"cannot load the delegate {plan.delegate}: {_first_line(exc)}"
                ) from None
        resolver = OpResolverType.AUTO
        if not plan.xnnpack:
            resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        failure: BaseException | None = None
        with quiet_native_stderr(replay=False) as chatter:
            try:
                interpreter = Interpreter(
                    model_path=str(self.path),
                    num_threads=self.threads,
                    experimental_delegates=delegates,
                    experimental_op_resolver_type=resolver,
                )
                interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                failure = exc  # raised below, once stderr is back: LiteRT's chatter then stays
        if isinstance(failure, RuntimeError):  # the caller may retry on the builtin kernels
            raise failure
        if failure is not None:
            raise EdgesmithError(
                f"{self.path} is not a readable TFLite model (truncated or corrupt?): "
                f"{_first_line(failure)}"
            ) from None
        if chatter:
            sys.stderr.write("\n".join(chatter) + "\n")
        return interpreter

    def embedded_metadata(self) -> dict | None:
        """The edgesmith document embedded in the file, or ``None``."""
        return read_tflite_metadata(self.path.read_bytes(), where=f"{self.path.name}: {WHERE}")

    def _ensure_batch(self, n: int) -> None:
        if n == self._batch:
            return
        shape = [n, *self.input.shape[1:]]
        with quiet_native_stderr():
            try:
                self._interpreter.resize_tensor_input(self._in_index, shape, strict=False)
                self._interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise EdgesmithError(
                    f"{self.path.name}: cannot resize the input to batch {n}: {_first_line(exc)}"
                ) from None
        self._batch = n

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on ``x`` (model dtype, any batch size); the raw output tensor."""
        self._ensure_batch(len(x))
        self._interpreter.set_tensor(self._in_index, x)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._out_index)

    def step(self, x: np.ndarray) -> Callable[[], object]:
        """Set ``x`` once and return ``interpreter.invoke``: the bare loop's own call."""
        self._ensure_batch(len(x))
        self._interpreter.set_tensor(self._in_index, x)
        return self._interpreter.invoke

    def close(self) -> None:
        """Drop the interpreter (LiteRT frees it with the last reference)."""
        self._interpreter = None
