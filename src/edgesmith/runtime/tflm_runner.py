"""The TFLite Micro backend: TFLM's own Python interpreter, the kernels a microcontroller runs.

TFLM (``tflite-micro`` on PyPI, the ``mcu`` extra) runs a .tflite file the way a Cortex-M
build does: a fixed batch of one, a single tensor arena, TFLM's op resolver, its reference
kernels. Running the file here tells what LiteRT cannot: whether TFLM accepts every op and
type (TFLM's own error otherwise), what its outputs are, and how many arena bytes it really
allocated (``RecordingMicroAllocator``), where an estimate from the graph is short of TFLM's
own bookkeeping. Latency measured here is the host's reference kernels, not the device's.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime.embedded_metadata import WHERE, read_tflite_metadata
from edgesmith.runtime.runner import TensorInfo, quantization_from_pair

TFLITE_IDENTIFIER = b"TFL3"
INSTALL_HINT = "TFLite Micro is not installed: pip install 'edgesmith[mcu]' (tflite-micro)"
# What TFLM's latency on this machine is, so that no table passes it off as device time.
LATENCY_NOTE = "TFLM reference kernels on this host CPU, not device time"
PROVIDER_LABEL = "tflm-host-reference"
# Room to allocate in: the arena TFLM reports is what it used, not what it was given.
MIN_ARENA_BYTES = 4 << 20
_ALLOCATION = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def tflm_available() -> bool:
    """Whether the ``tflite-micro`` package can be imported here."""
    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _capture_stderr(call: Callable[[], object]) -> tuple[object, list[str], BaseException | None]:
    """Run ``call`` with file descriptor 2 captured; its result, the lines, and any error.

    TFLM's MicroPrintf writes its allocation report and its errors straight to descriptor 2,
    which Python's ``sys.stderr`` never sees.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    error: BaseException | None = None
    result = None
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            result = call()
        except (RuntimeError, ValueError) as exc:
            error = exc
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        lines = sink.read().decode(errors="replace").splitlines()
    return result, [line.strip() for line in lines if line.strip()], error


def parse_allocations(lines: list[str]) -> dict[str, int]:
    """``{"total", "head", "tail"}`` bytes from ``print_allocations()``'s report lines."""
    found = {}
    for line in lines:
        match = _ALLOCATION.search(line)
        if match:
            found[match.group(1)] = int(match.group(2))
    return found


def _tensor(detail: dict, name: str) -> TensorInfo:
    shape = [int(d) for d in detail["shape"]]
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []))
    zeros = np.asarray(params.get("zero_points", []))
    scale, zero_point = (None, 0)
    if scales.size == 1:
        scale, zero_point = quantization_from_pair(float(scales[0]), int(zeros[0]))
    # TFLM runs one image per invoke; batches are looped, so the batch is open.
    return TensorInfo(name, (None, *shape[1:]), np.dtype(detail["dtype"]), scale, zero_point)


def _tflm_problem(path: Path, lines: list[str], error: BaseException) -> EdgesmithError:
    """TFLM's own explanation (its printed lines) of why it cannot run the file."""
    said = [line for line in lines if "RecordingMicroAllocator" not in line]
    reason = "; ".join(said[:3]) or _first_line(error)
    return EdgesmithError(f"{path.name}: TFLite Micro cannot run it: {reason}")


class TFLMRunner:
    """Run a .tflite file in TFLM's interpreter, one image per invoke.

    Args:
        path: the .tflite file.

    Attributes:
        arena: ``{"total", "head", "tail"}`` bytes TFLM allocated (``head``: the planned
            activation buffers; ``tail``: persistent tensors, node and op data).

    Raises:
        EdgesmithError: when tflite-micro is not installed, the file is not a TFLite model, or
            TFLM cannot prepare or run it (an op or a type it does not support: its message).
    """

    runtime = "tflm"
    provider_used = PROVIDER_LABEL
    threads = 1
    latency_note = LATENCY_NOTE

    def __init__(self, path: Path):
        self.path = Path(path)
        data = self.path.read_bytes()
        if data[4:8] != TFLITE_IDENTIFIER:
            raise EdgesmithError(
                f"{self.path} is not a TFLite model (no TFL3 identifier): TFLM runs .tflite "
                "flatbuffers only"
            )
        try:
            from tflite_micro.python.tflite_micro import runtime as tflm
        except ImportError:
            raise EdgesmithError(INSTALL_HINT) from None
        arena_size = max(MIN_ARENA_BYTES, 10 * len(data))
        interpreter, lines, error = _capture_stderr(
            lambda: tflm.Interpreter.from_bytes(data, arena_size=arena_size)
        )
        if error is not None:
            raise _tflm_problem(self.path, lines, error)
        self._interpreter = interpreter
        inputs = self._interpreter.get_input_details(0)
        outputs = self._interpreter.get_output_details(0)
        self.input = _tensor(inputs, "input")
        self.output = _tensor(outputs, "output")
        self._shape = (1, *self.input.shape[1:])
        self.arena = self._measure_arena()

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        self._interpreter.set_input(x, 0)
        _, lines, error = _capture_stderr(self._interpreter.invoke)
        if error is not None:
            raise _tflm_problem(self.path, lines, error)
        return np.array(self._interpreter.get_output(0))

    def _measure_arena(self) -> dict[str, int]:
        """Invoke once (on zeros) and read what the recording allocator says it allocated."""
        self._invoke(np.zeros(self._shape, self.input.dtype))
        _, lines, _ = _capture_stderr(self._interpreter.print_allocations)
        arena = parse_allocations(lines)
        if "total" not in arena:
            raise EdgesmithError(
                f"{self.path.name}: TFLite Micro did not report its arena allocations"
            )
        return arena

    def record_extra(self) -> dict:
        """What a bench record gains from TFLM: the measured arena and what latency means."""
        return {
            "tflm": {
                "arena_bytes": self.arena["total"],
                "arena_head_bytes": self.arena.get("head"),
                "arena_tail_bytes": self.arena.get("tail"),
                "arena_source": "measured by TFLM's RecordingMicroAllocator",
                "latency_note": LATENCY_NOTE,
            }
        }

    def embedded_metadata(self) -> dict | None:
        """The edgesmith document embedded in the file, or ``None``."""
        return read_tflite_metadata(self.path.read_bytes(), where=f"{self.path.name}: {WHERE}")

    def run(self, x: np.ndarray) -> np.ndarray:
        """Inference on ``x`` (model dtype, any batch size), one invoke per image."""
        rows = [self._invoke(x[i : i + 1].reshape(self._shape)) for i in range(len(x))]
        return np.concatenate(rows) if rows else np.zeros((0,), self.output.dtype)

    def step(self, x: np.ndarray) -> Callable[[], object]:
        """Bind ``x`` and return a call that runs it: a bare ``invoke`` for a batch of one."""
        if len(x) == 1:
            self._interpreter.set_input(np.ascontiguousarray(x.reshape(self._shape)), 0)
            return self._interpreter.invoke
        images = [np.ascontiguousarray(x[i : i + 1].reshape(self._shape)) for i in range(len(x))]

        def invoke_all() -> None:
            for image in images:
                self._interpreter.set_input(image, 0)
                self._interpreter.invoke()

        return invoke_all

    def close(self) -> None:
        """Drop the interpreter (its arena goes with it)."""
        self._interpreter = None


def measure_arena(path: Path) -> dict[str, int]:
    """The arena TFLM allocates for ``path``: ``{"total", "head", "tail"}`` bytes.

    Raises:
        EdgesmithError: when tflite-micro is missing or TFLM cannot run the file (its reason).
    """
    runner = TFLMRunner(path)
    try:
        return dict(runner.arena)
    finally:
        runner.close()
