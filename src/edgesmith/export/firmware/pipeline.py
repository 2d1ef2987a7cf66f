"""One model, one core: generate, build, run in QEMU, and compare with LiteRT on the same inputs.

The firmware is linked twice: first with a generous arena to learn what TFLM + CMSIS-NN
allocate on the target (``arena_used_bytes()``, which differs from the x86 interpreter's figure
because CMSIS-NN asks for scratch buffers), then with that arena (16-byte rounded), so the RAM
figure is the one a firmware engineer would ship.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesmith.core.errors import EdgesmithError
from edgesmith.export.c_array import write_c_array
from edgesmith.export.ops import tflite_io_tensors, tflite_op_report
from edgesmith.export.parity import DEFAULT_MAX_ACCURACY_DROP, accuracy_drop_test

from . import build, project, qemu, sources

FIRST_ARENA_BYTES = 1 << 20
ARENA_MARGIN_BYTES = 1024


@dataclass(frozen=True)
class FirmwareReport:
    """The figures one firmware run gives (instructions are retired instructions, not time)."""

    target: str
    machine: str
    num_images: int
    agreement_vs_litert: float
    accuracy: float | None
    litert_accuracy: float | None
    accuracy_test: dict[str, Any] | None  # firmware vs LiteRT, the parity rule (with labels)
    flash_kb: float
    ram_kb: float
    arena_bytes: int
    arena_used_bytes: int
    instructions_per_inference: int
    instructions_deterministic: bool
    library_build_seconds: float
    library_cached: bool
    emulation_seconds: float
    emulation_seconds_per_image: float
    versions: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (for the manifest, the bench script)."""
        return asdict(self)


def toolchain_version() -> str:
    """``arm-none-eabi-gcc --version``'s first line."""
    gcc = build.require_tool("arm-none-eabi-gcc")
    out = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip()


def io_bytes(model_bytes: bytes) -> tuple[int, int]:
    """(input, output) bytes of a one-input, one-output int8 model.

    Raises:
        EdgesmithError: another count of tensors, or a tensor that is not int8.
    """
    io = tflite_io_tensors(model_bytes)
    if len(io["input"]) != 1 or len(io["output"]) != 1:
        raise EdgesmithError("the firmware runs models with one input and one output tensor")
    for record in (io["input"][0], io["output"][0]):
        if record["dtype"] != "int8":
            raise EdgesmithError(
                f"tensor {record['name']!r} is {record['dtype']}; the firmware expects int8 I/O "
                "(export --format tflite-int8)"
            )
    sizes = [int(np.prod(io[k][0]["shape"])) for k in ("input", "output")]
    return sizes[0], sizes[1]


def build_firmware(
    model_path: Path,
    target: str,
    workdir: Path,
    *,
    tflm_sources: str | Path | None = None,
    arena_bytes: int = FIRST_ARENA_BYTES,
) -> tuple[Path, dict[str, Any]]:
    """Generate and link the firmware for the model; return (ELF, build facts)."""
    board = project.board_for(target)
    model_bytes = Path(model_path).read_bytes()
    input_bytes, output_bytes = io_bytes(model_bytes)
    model = {  # what the project is generated for, and the facts report
        "input_bytes": input_bytes,
        "output_bytes": output_bytes,
        "operators": tflite_op_report(model_bytes)["operators"],
    }
    tflm = sources.prepare(tflm_sources)
    library, seconds, cached = build.build_library(tflm, board)
    template = (
        tflm / build.DFP / f"Device/{board.device}/Config/{board.device}_gcc.ld"
    ).read_text()
    proj = workdir / "project"
    project.write_project(
        proj, arena_bytes=arena_bytes, linker_template=template, board=board, **model
    )
    write_c_array(model_bytes, proj)
    elf = build.link_firmware(proj, tflm, board, library)
    return elf, {"library_build_seconds": seconds, "library_cached": cached, **model}


def firmware_report(
    model_path: Path,
    target: str,
    inputs: np.ndarray,
    workdir: Path,
    *,
    labels: np.ndarray | None = None,
    tflm_sources: str | Path | None = None,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
) -> FirmwareReport:
    """Build, run ``inputs`` (N, ...) int8 through the firmware and LiteRT, and compare.

    With ``labels``, the firmware's accuracy is judged against LiteRT's on the same images by
    the parity rule of quantised files (``export/parity.py``: McNemar's exact test with a
    ``max_accuracy_drop``-point margin): the two run the same int8 file with different
    kernels, as an int8 file and its float source compute the same model differently.
    """
    from edgesmith.runtime import load

    board = project.board_for(target)
    inputs = np.asarray(inputs)
    if inputs.dtype != np.int8 or len(inputs) == 0:
        raise EdgesmithError(
            f"firmware inputs: expected a non-empty int8 batch, got {inputs.dtype}"
        )
    elf, facts = build_firmware(model_path, target, workdir, tflm_sources=tflm_sources)
    probe = qemu.run_firmware(board, elf, inputs[:1].reshape(1, -1), workdir / "probe")
    arena = -(-(probe.arena_used_bytes + ARENA_MARGIN_BYTES) // 16) * 16
    elf, _ = build_firmware(
        model_path, target, workdir, tflm_sources=tflm_sources, arena_bytes=arena
    )
    flat = inputs.reshape(len(inputs), -1)
    run = qemu.run_firmware(board, elf, flat, workdir / "run")
    again = qemu.run_firmware(board, elf, flat[:2], workdir / "rerun")
    deterministic = again.instructions_per_inference == run.instructions_per_inference[:2]
    sizes = build.elf_sizes(elf)
    model = load(model_path)
    reference = model.run(inputs.reshape((len(inputs), *model.input_tensor.shape[1:])))
    firmware_top1 = run.outputs.argmax(axis=1)
    agreement = float(np.mean(firmware_top1 == reference.argmax(axis=1)))  # same int8 inputs
    litert_top1 = reference.argmax(axis=1)
    accuracy = litert_accuracy = test = None
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        accuracy = float(np.mean(firmware_top1 == labels))
        litert_accuracy = float(np.mean(litert_top1 == labels))
        test = accuracy_drop_test(litert_top1 == labels, firmware_top1 == labels, max_accuracy_drop)
    from .sources import PINNED

    versions = {
        "toolchain": toolchain_version(),
        "qemu": qemu.qemu_version(),
        "tflite_micro": PINNED[0].commit,
        "cmsis_nn": PINNED[1].commit,
        "cmsis": PINNED[2].commit,
    }
    return FirmwareReport(
        target=target,
        machine=board.machine,
        num_images=len(inputs),
        agreement_vs_litert=agreement,
        accuracy=accuracy,
        litert_accuracy=litert_accuracy,
        accuracy_test=test,
        flash_kb=sizes.flash_bytes / 1024,
        ram_kb=sizes.ram_bytes / 1024,
        arena_bytes=arena,
        arena_used_bytes=run.arena_used_bytes,
        instructions_per_inference=int(np.median(run.instructions_per_inference)),
        instructions_deterministic=deterministic,
        library_build_seconds=facts["library_build_seconds"],
        library_cached=facts["library_cached"],
        emulation_seconds=run.wall_seconds,
        emulation_seconds_per_image=run.wall_seconds / len(inputs),
        versions=versions,
    )
