"""Target checks: ``int8-only`` accelerators, TFLite Micro (TFLM) and Arm Ethos-U NPUs.

``int8-only`` (NPUs, Edge TPU class) fails on any op that touches a float tensor. ``tflm``
fails on ops outside TFLM's op resolver, on float16 or sparse tensors (TFLM runs neither), and
on hybrid ops (int8 weights with float activations); then, where ``tflite-micro`` is installed,
it runs the file in TFLM's interpreter: TFLM's own error fails the check, and the arena it
allocated is recorded as measured. Only without TFLM does the record fall back to an estimate
(a greedy plan of the activation tensors, as TFLM's ``GreedyMemoryPlanner`` lays them out),
labelled as one. ``ethos-u55-128`` and the other Ethos-U targets compile the file with Arm's
Vela (``export/vela.py``) and record its placement, memory and performance estimate.
The Cortex-M targets (``cortex-m4``, ``cortex-m7``, ``cortex-m55``) refuse here what the
generated firmware cannot hold; the firmware is built and run in QEMU once the file has passed
parity (``export/firmware/check.py``).

What a LiteRT Quantizer recipe makes is refused by name where a target cannot run it: 16-bit
activations and int4 weights on ``int8-only``; int4 weights behind a DEQUANTIZE (weight-only
int4) and blockwise-quantised weights on ``tflm``; int4 and blockwise tensors on Ethos-U, which
Vela cannot read (5.2.0 dies with SIGFPE on them), so they are refused before Vela runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgesmith.core.errors import CheckFailed, EdgesmithError
from edgesmith.core.profiles import FIRMWARE_TARGETS
from edgesmith.export.ops import FLOAT_TYPES, tensor_bytes

# The builtin ops TFLM's MicroMutableOpResolver can register (tflite-micro,
# tensorflow/lite/micro/micro_mutable_op_resolver.h; its AddXxx() methods).
TFLM_OPS = frozenset(
    """
    ABS ADD ADD_N ARG_MAX ARG_MIN AVERAGE_POOL_2D BATCH_TO_SPACE_ND CAST CEIL CONCATENATION
    CONV_2D COS CUMSUM DEPTH_TO_SPACE DEPTHWISE_CONV_2D DEQUANTIZE ELU EQUAL EXP EXPAND_DIMS
    FILL FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL
    HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND
    LOGICAL_NOT LOGICAL_OR LOGISTIC MAXIMUM MAX_POOL_2D MEAN MINIMUM MUL NEG NOT_EQUAL PACK PAD
    PADV2 PRELU QUANTIZE REDUCE_MAX RELU RELU6 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR
    ROUND RSQRT SHAPE SIN SOFTMAX SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPLIT SPLIT_V SQUEEZE SQRT
    SQUARE STRIDED_SLICE SUB SVDF TANH TRANSPOSE TRANSPOSE_CONV UNPACK ZEROS_LIKE
    """.split()
)
TFLM_ALIGNMENT = 16
# Ethos-U targets: Vela's accelerator configs that edgesmith ships a device profile for.
ETHOS_U_TARGETS = ("ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u85-256")
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def check_int8_only(report: dict[str, Any], where: str) -> dict[str, Any]:
    """Pass when every op computes in int8; else fail naming the ops that do not.

    Float tensors, 16-bit activations (W8A16, int16x8) and int4 weights are all outside what an
    int8-only accelerator runs.

    Raises:
        CheckFailed: listing the first offending ops (index, name, dtypes) of each kind.
    """
    problems = []
    floats = report["float_ops"]
    if floats:
        shown = ", ".join(f"#{f['index']} {f['op']} ({'/'.join(f['dtypes'])})" for f in floats[:5])
        problems.append(f"{len(floats)} op(s) use float tensors: {shown}{_more(floats)}")
    if "_execution" in report:
        for dtype, what in (("int16", "16-bit activations"), ("int4", "int4 weights")):
            ops = _ops_with(report, dtype, constant=dtype == "int4")
            if ops:
                problems.append(f"{len(ops)} op(s) use {what}: {', '.join(ops[:5])}{_more(ops)}")
    if problems:
        raise CheckFailed(f"{where}: --target int8-only: " + "; ".join(problems))
    return {"target": "int8-only", "verdict": "pass"}


def _more(items: list) -> str:
    return f" and {len(items) - 5} more" if len(items) > 5 else ""


def _ops_with(report: dict[str, Any], dtype: str, *, constant: bool) -> list[str]:
    """``#index OP`` of each op with a ``dtype`` tensor: a weight (constant) or an activation."""
    tensors = report["_tensors"]
    found = []
    for index, op in enumerate(report["_execution"]):
        if any(
            tensors[i]["dtype"] == dtype and tensors[i]["constant"] == constant
            for i in op["inputs"] + op["outputs"]
        ):
            found.append(f"#{index} {op['op']}")
    return found


def check_tflm(
    report: dict[str, Any], size_bytes: int, where: str, model_path: Path | None = None
) -> dict[str, Any]:
    """Check a .tflite file against TFLM; record flash and the arena (measured where possible).

    Args:
        report: the file's op report (``export.ops.tflite_op_report``).
        size_bytes: the file's size (the flash it takes).
        where: the format's name, for messages.
        model_path: the written file; with it and TFLM installed, TFLM runs it.

    Raises:
        CheckFailed: naming unsupported ops, float16/sparse tensors or hybrid ops, or with
            TFLM's own message when its interpreter refuses the file.
    """
    if report["format"] != "tflite":
        raise CheckFailed(f"{where}: --target tflm runs .tflite files only, not {report['format']}")
    problems = []
    unsupported = sorted(set(report["operators"]) - TFLM_OPS)
    if unsupported:
        problems.append(f"ops not in TFLM's resolver: {', '.join(unsupported)}")
    if "float16" in report["tensor_dtypes"]:
        problems.append("float16 tensors (TFLM has no float16 kernels)")
    if report.get("sparse_tensors"):
        problems.append(f"{report['sparse_tensors']} sparse tensor(s) (TFLM reads dense only)")
    hybrid = _hybrid_ops(report)
    if hybrid:
        problems.append(f"hybrid int8-weight/float ops: {', '.join(hybrid[:5])}")
    problems += _litert_problems_tflm(report)
    if problems:
        raise CheckFailed(f"{where}: --target tflm: " + "; ".join(problems))
    record = {"target": "tflm", "verdict": "pass", "flash_bytes": int(size_bytes)}
    estimate = arena_estimate(report)
    measured = measure_arena(model_path, where) if model_path is not None else None
    if measured is None:
        record.update(
            arena_bytes_estimate=estimate,
            arena_source="estimate",
            arena_note="estimated: tflite-micro is not installed (pip install "
            "'edgesmith[mcu]' to measure); activation buffers only, planned greedily as TFLM "
            "does; TFLM adds a few KB of per-tensor and per-op bookkeeping",
        )
        return record
    record.update(
        arena_bytes=measured["total"],
        arena_head_bytes=measured.get("head"),
        arena_tail_bytes=measured.get("tail"),
        arena_source="measured",
        arena_note="allocated by TFLM's interpreter (RecordingMicroAllocator): head = planned "
        "activation buffers, tail = persistent tensor, node and op data",
        arena_bytes_former_estimate=estimate,
    )
    return record


def measure_arena(model_path: Path, where: str) -> dict[str, int] | None:
    """TFLM's allocated arena for the file, or None where tflite-micro is not installed.

    Raises:
        CheckFailed: with TFLM's own message when it cannot run the file.
    """
    from edgesmith import runtime

    if not runtime.tflm_available():
        return None
    try:
        return runtime.measure_tflm_arena(model_path)
    except EdgesmithError as exc:
        raise CheckFailed(f"{where}: --target tflm: {exc}") from None


def _litert_problems_tflm(report: dict[str, Any]) -> list[str]:
    """What TFLM cannot run among the LiteRT Quantizer's int4 and blockwise encodings."""
    problems = []
    if "_execution" not in report:
        return problems
    tensors = report["_tensors"]
    dequantized = [
        f"#{index} {op['op']}"
        for index, op in enumerate(report["_execution"])
        if op["op"] == "DEQUANTIZE" and any(tensors[i]["dtype"] == "int4" for i in op["inputs"])
    ]
    if dequantized:
        problems.append(
            f"{len(dequantized)} DEQUANTIZE op(s) of int4 weights ({', '.join(dequantized[:3])}): "
            "TFLM dequantizes int8, int16 and uint8 only, so weight-only int4 files cannot run"
        )
    blockwise = report.get("_blockwise_tensors", 0)
    if blockwise:
        problems.append(
            f"{blockwise} blockwise-quantised weight tensor(s) (BLOCKWISE_* with float16 "
            "scales): TFLM has no kernels for them"
        )
    return problems


def _ethos_u_refusal(report: dict[str, Any] | None) -> str | None:
    """Why Vela must not be run on the file (int4 or blockwise tensors), or None."""
    if report is None:
        return None
    reasons = []
    int4 = report["tensor_dtypes"].get("int4", 0)
    if int4:
        reasons.append(f"{int4} int4 tensor(s)")
    if report.get("_blockwise_tensors"):
        reasons.append(f"{report['_blockwise_tensors']} blockwise-quantised tensor(s)")
    if not reasons:
        return None
    return (
        f"{' and '.join(reasons)}: Ethos-U runs int8 and int16 tensors and Vela cannot compile "
        "these (Vela 5.2.0 dies with SIGFPE on the LiteRT Quantizer's int4 weights); use an "
        "8-bit recipe (tflite-w8a8, tflite-w8a16) for the NPU"
    )


def check_ethos_u(
    model_path: Path, where: str, vela: dict[str, Any] | None, accelerator: str, out_dir: Path
) -> dict[str, Any]:
    """Compile the file with Vela for an Ethos-U target; the record of what Vela estimates.

    Args:
        model_path: the written int8 .tflite file.
        where: the format's name, for messages.
        vela: a profile's ``vela`` mapping (system config, memory mode, clock), or None.
        accelerator: the target name (``ethos-u55-128`` ...), Vela's accelerator config.
        out_dir: receives ``model_vela.tflite``.

    Raises:
        EdgesmithError: when Vela is not installed (the ``npu`` extra).
        CheckFailed: when Vela cannot compile the file (its message).
    """
    from edgesmith.export.vela import VelaConfig, compile_for_npu

    config = VelaConfig.from_dict({**(vela or {}), "accelerator": accelerator}, "vela")
    try:
        record = compile_for_npu(model_path, config, out_dir)
    except CheckFailed as exc:
        raise CheckFailed(f"{where}: --target {accelerator}: {exc}") from None
    return {"target": accelerator, "verdict": "pass", "vela": record}


def check_target(
    target: str | None,
    report: dict[str, Any],
    model_path: Path,
    where: str,
    *,
    vela: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Run the check for ``target`` on a written file; its manifest record (None: no target).

    Ethos-U targets write ``model_vela.tflite`` and its C array (``model_vela_data.cc``/``.h``,
    array ``g_model_vela_data``) beside the file; the record's ``files`` lists them so that
    the artifact holds them.
    """
    if target is None:
        return None
    if target == "int8-only":
        return check_int8_only(report, where)
    if target == "tflm":
        return check_tflm(report, Path(model_path).stat().st_size, where, Path(model_path))
    if target in ETHOS_U_TARGETS:
        from edgesmith.export.c_array import write_c_array

        refusal = _ethos_u_refusal(report)
        if refusal is not None:
            raise CheckFailed(f"{where}: --target {target}: {refusal}")
        folder = Path(model_path).parent
        record = check_ethos_u(Path(model_path), where, vela, target, folder)
        compiled = (folder / record["vela"]["file"]).read_bytes()
        # The NPU firmware links the compiled model in as an array, as TFLM builds do.
        arrays = write_c_array(compiled, folder, name="model_vela_data")
        record["vela"]["c_array"] = {"source": arrays[0], "header": arrays[1]}
        record["files"] = [record["vela"]["file"], *arrays]
        return record
    if target in FIRMWARE_TARGETS:  # the firmware itself runs after parity (exporter)
        from edgesmith.export.firmware.check import static_check

        return static_check(report, Path(model_path), where, target)
    raise EdgesmithError(f"unknown target {target!r}")


def _hybrid_ops(report: dict[str, Any]) -> list[str]:
    tensors = report["_tensors"]
    hybrid = []
    for index, op in enumerate(report["_execution"]):
        if op["op"] not in WEIGHT_OPS:
            continue
        dtypes = [tensors[i]["dtype"] for i in op["inputs"]]
        weights = [tensors[i]["dtype"] for i in op["inputs"] if tensors[i]["constant"]]
        if any(d in FLOAT_TYPES for d in dtypes) and "int8" in weights:
            hybrid.append(f"#{index} {op['op']}")
        elif any(d in FLOAT_TYPES for d in dtypes) and "int4" in weights:
            hybrid.append(f"#{index} {op['op']} (int4 weights)")
    return hybrid


def arena_estimate(report: dict[str, Any]) -> int:
    """Bytes of the activation arena under a greedy plan (largest buffer first, lowest offset).

    Each non-constant tensor lives from the op that writes it (or the start, for model inputs)
    to the last op that reads it (or the end, for model outputs); buffers whose lifetimes
    overlap may not share bytes. TFLM's GreedyMemoryPlanner follows the same rule.
    """
    tensors = report["_tensors"]
    execution = report["_execution"]
    last = len(execution)
    first_use: dict[int, int] = {}
    last_use: dict[int, int] = {}
    names = {t["name"]: i for i, t in enumerate(tensors)}
    for io in report["io"]["inputs"]:
        first_use[names[io["name"]]] = 0
    for step, op in enumerate(execution):
        for index in op["outputs"]:
            first_use.setdefault(index, step)
        for index in op["inputs"] + op["outputs"]:
            last_use[index] = step
    for io in report["io"]["outputs"]:
        last_use[names[io["name"]]] = last
    buffers = []
    for index, start in first_use.items():
        if tensors[index]["constant"]:
            continue
        size = -(-tensor_bytes(tensors[index]) // TFLM_ALIGNMENT) * TFLM_ALIGNMENT
        buffers.append((size, start, last_use.get(index, start)))
    placed: list[tuple[int, int, int, int]] = []  # offset, size, start, end
    for size, start, end in sorted(buffers, key=lambda b: -b[0]):
        live = sorted((o, s) for o, s, a, b in placed if not (b < start or end < a))
        offset = 0
        for other_offset, other_size in live:
            if offset + size <= other_offset:
                break
            offset = max(offset, other_offset + other_size)
        placed.append((offset, size, start, end))
    return max((o + s for o, s, _, _ in placed), default=0)
