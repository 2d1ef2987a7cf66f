"""Target checks: ``int8-only`` accelerators and TensorFlow Lite for Microcontrollers (TFLM).

``int8-only`` (NPUs, Edge TPU class) fails on any op that touches a float tensor. ``tflm``
fails on ops outside TFLM's op resolver, on float16 or sparse tensors (TFLM runs neither), and
on hybrid ops (int8 weights with float activations); it reports flash (the file's bytes) and an
arena estimate from a greedy memory plan of the activation tensors, the way TFLM's
``GreedyMemoryPlanner`` lays them out.
"""

from __future__ import annotations

from typing import Any

from edgesmith.errors import CheckFailed
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
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def check_int8_only(report: dict[str, Any], where: str) -> dict[str, Any]:
    """Pass when no op touches a float tensor; else fail naming the float ops.

    Raises:
        CheckFailed: listing the first float ops (index, name, dtypes).
    """
    floats = report["float_ops"]
    if floats:
        shown = ", ".join(f"#{f['index']} {f['op']} ({'/'.join(f['dtypes'])})" for f in floats[:5])
        more = f" and {len(floats) - 5} more" if len(floats) > 5 else ""
        raise CheckFailed(
            f"{where}: --target int8-only: {len(floats)} op(s) use float tensors: {shown}{more}"
        )
    return {"target": "int8-only", "verdict": "pass"}


def check_tflm(report: dict[str, Any], size_bytes: int, where: str) -> dict[str, Any]:
    """Check a .tflite report against TFLM and estimate flash and arena.

    Raises:
        CheckFailed: naming unsupported ops, float16/sparse tensors or hybrid ops.
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
    if problems:
        raise CheckFailed(f"{where}: --target tflm: " + "; ".join(problems))
    return {
        "target": "tflm",
        "verdict": "pass",
        "flash_bytes": int(size_bytes),
        "arena_bytes_estimate": arena_estimate(report),
        "arena_note": "activation buffers only, planned greedily as TFLM does; TFLM adds a few "
        "KB of per-tensor and per-op bookkeeping",
    }


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
