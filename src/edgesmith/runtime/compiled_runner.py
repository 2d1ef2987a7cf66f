"""The LiteRT ``CompiledModel`` backend: LiteRT's successor to ``Interpreter`` (opt-in).

``CompiledModel`` is the door to LiteRT's accelerators (XNNPACK on the CPU; WebGPU/OpenCL GPU
and NPU dispatch libraries where present) and is what Google's ``benchmark_litert_model``
times. Chosen with ``provider="compiled"`` (CPU) or ``"compiled:gpu"`` (GPU, CPU for the ops
the GPU cannot run). Its tensor details carry no quantisation, so scale and zero point are read
from the flatbuffer with the schema ai-edge-litert ships.
"""

from __future__ import annotations

import atexit
import functools
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime.embedded_metadata import read_tflite_metadata
from edgesmith.runtime.quiet import quiet_native_stderr
from edgesmith.runtime.runner import (
    ProviderFallbackWarning,
    TensorInfo,
    batch_dim,
    quantization_from_pair,
)

_EXIT_HOOK = []


def _silence_teardown() -> None:
    """LiteRT's accelerator registry logs its teardown after Python exits: send it nowhere."""
    if _EXIT_HOOK or os.environ.get("EDGESMITH_VERBOSE_TF") == "1":
        return

    def at_exit() -> None:
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
        except OSError:
            pass

    atexit.register(at_exit)
    _EXIT_HOOK.append(at_exit)


def tensor_quantization(model_bytes: bytes, index: int) -> tuple[float | None, int]:
    """Scale and zero point of tensor ``index`` in subgraph 0 (per-tensor; None if absent)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(bytearray(model_bytes), 0)
    tensor = model.Subgraphs(0).Tensors(index)
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None, 0
    return quantization_from_pair(float(q.Scale(0)), int(q.ZeroPoint(0)))


class CompiledRunner:
    """Run a .tflite file with ``ai_edge_litert.compiled_model.CompiledModel``.

    Args:
        path: the .tflite file.
        threads: CPU threads (``None``: LiteRT's default).
        gpu: ask for the GPU accelerator (the CPU takes what it cannot run).

    Raises:
        EdgesmithError: for a file LiteRT cannot compile.
    """

    runtime = "litert"

    def __init__(self, path: Path, *, threads: int | None, gpu: bool = False):
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.environment import Environment
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import CpuOptions, Options

        self.path = Path(path)
        self.threads = threads
        self._bytes = self.path.read_bytes()
        if self._bytes[4:8] != b"TFL3":
            raise EdgesmithError(f"{self.path} is not a TFLite model (no TFL3 identifier)")

        def compile_for(accelerators):
            options = Options(
                hardware_accelerators=accelerators,
                cpu_options=CpuOptions(num_threads=threads or 0),
            )
            self._env = Environment.create()
            return CompiledModel.from_file(str(self.path), environment=self._env, options=options)

        _silence_teardown()
        self.provider_used = "compiled"
        self._model = None
        if gpu:
            # A machine without a GPU adapter fails here, with a page of Vulkan/WebGPU errors:
            # fall back to the CPU and say so in one line, as onnxruntime's providers do.
            with quiet_native_stderr(replay=False) as lines:
                try:
                    self._model = compile_for(HardwareAccelerator.GPU | HardwareAccelerator.CPU)
                except (RuntimeError, ValueError):
                    self._env.close()
            if self._model is None:
                reason = next((ln for ln in lines if "GPU" in ln or "adapter" in ln), "")
                warnings.warn(
                    f"{self.path.name}: LiteRT's GPU accelerator is not usable here "
                    f"({reason.strip()[:120] or 'no GPU'}); running on the CPU",
                    ProviderFallbackWarning,
                    stacklevel=4,
                )
            elif self._model.is_fully_accelerated():
                self.provider_used = "compiled:gpu"
            else:
                self.provider_used = "compiled:gpu+cpu"
                warnings.warn(
                    f"{self.path.name}: the GPU accelerator did not take the whole model: "
                    "the ops it cannot run are on the CPU",
                    ProviderFallbackWarning,
                    stacklevel=4,
                )
        if self._model is None:
            with quiet_native_stderr():
                try:
                    self._model = compile_for(HardwareAccelerator.CPU)
                except (RuntimeError, ValueError) as exc:
                    text = str(exc).strip().splitlines()
                    raise EdgesmithError(
                        f"{self.path}: LiteRT CompiledModel cannot load it: "
                        f"{text[0] if text else type(exc).__name__}"
                    ) from None
        self._signature = next(iter(self._model.get_signature_list()))
        inputs = self._model.get_input_tensor_details(self._signature)
        if len(inputs) != 1:
            raise EdgesmithError(
                f"{self.path}: expected a classifier with one image input; it has {len(inputs)}"
            )
        self.input = self._info(next(iter(inputs.values())), dynamic_batch=True)
        self.output = self._info(self._output_detail(), dynamic_batch=True)
        self._batch = 0
        self._ensure_batch(1)

    def _output_detail(self) -> dict:
        return next(iter(self._model.get_output_tensor_details(self._signature).values()))

    def _info(self, detail: dict, *, dynamic_batch: bool) -> TensorInfo:
        scale, zero_point = tensor_quantization(self._bytes, int(detail["index"]))
        shape = [int(d) for d in detail["shape"]]
        batch = None if dynamic_batch else batch_dim(shape[0])
        return TensorInfo(
            detail["name"], (batch, *shape[1:]), np.dtype(detail["dtype"]), scale, zero_point
        )

    def embedded_metadata(self) -> dict | None:
        """The edgesmith document embedded in the file, or ``None``."""
        return read_tflite_metadata(self._bytes)

    def _ensure_batch(self, n: int) -> None:
        if n == self._batch:
            return
        with quiet_native_stderr():
            try:
                self._model.resize_input_tensor(0, [n, *self.input.shape[1:]], 0)
            except (RuntimeError, ValueError) as exc:
                raise EdgesmithError(
                    f"{self.path.name}: cannot resize the input to batch {n}: {exc}"
                ) from None
            self._inputs = self._model.create_input_buffers(0)
            self._outputs = self._model.create_output_buffers(0)
            # The first run after (re)allocation sets up an environment and logs it: do it
            # here, inside the silenced block, rather than in the user's first inference.
            self._inputs[0].write(np.zeros((n, *self.input.shape[1:]), self.input.dtype))
            self._model.run_by_index(0, self._inputs, self._outputs)
        self._out_shape = [int(d) for d in self._output_detail()["shape"]]
        self._batch = n

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on ``x`` (model dtype, any batch size); the raw output tensor."""
        self._ensure_batch(len(x))
        self._inputs[0].write(np.ascontiguousarray(x))
        self._model.run_by_index(0, self._inputs, self._outputs)
        count = int(np.prod(self._out_shape))
        return self._outputs[0].read(count, self.output.dtype).reshape(self._out_shape)

    def step(self, x: np.ndarray) -> Callable[[], object]:
        """Write ``x`` once and return the bare ``run_by_index`` call on the bound buffers."""
        self._ensure_batch(len(x))
        self._inputs[0].write(np.ascontiguousarray(x))
        return functools.partial(self._model.run_by_index, 0, self._inputs, self._outputs)

    def __del__(self) -> None:
        # A runner dropped without close() would log its teardown on the user's terminal.
        try:
            self.close()
        except Exception:  # a finaliser must not raise; there is nothing left to report
            pass

    def close(self) -> None:
        """Release the compiled model and its environment (their log lines silenced)."""
        with quiet_native_stderr():
            for item in (getattr(self, "_model", None), getattr(self, "_env", None)):
                if item is not None:
                    item.close()
        self._model = self._env = None
