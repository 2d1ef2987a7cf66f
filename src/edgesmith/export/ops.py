"""Operator reports of exported files: which ops, on which tensor dtypes, and which touch floats.

TFLite files are read with the flatbuffer schema ai-edge-litert ships and ONNX files with
``onnx``; neither needs TensorFlow. The report goes into the manifest (``ops``) and feeds the
target checks (``export/targets.py``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from edgesmith.core.errors import EdgesmithError

FLOAT_TYPES = ("float32", "float16", "float64", "bfloat16")
ITEM_BYTES = {
    "float32": 4,
    "float16": 2,
    "int32": 4,
    "uint8": 1,
    "int64": 8,
    "bool": 1,
    "int16": 2,
    "int8": 1,
    "float64": 8,
    "uint64": 8,
    "uint32": 4,
    "uint16": 2,
    "bfloat16": 2,
}


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _enum_names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def read_tflite(model_bytes: bytes):
    """Unpack a .tflite flatbuffer into the schema's object API (``ModelT``).

    Raises:
        EdgesmithError: when the bytes are not a readable TFLite flatbuffer.
    """
    schema = _schema()
    try:
        return schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    except Exception as exc:  # flatbuffers raises struct/index errors on corrupt input
        raise EdgesmithError(f"not a readable .tflite flatbuffer ({type(exc).__name__})") from None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _tensor_record(model, tensor) -> dict[str, Any]:
    type_names = _enum_names(_schema().TensorType)
    dtype = type_names.get(tensor.type, str(tensor.type)).lower()
    quant = tensor.quantization
    record = None
    if quant is not None and quant.scale is not None and len(quant.scale) == 1:
        record = {"scale": float(quant.scale[0]), "zero_point": int(quant.zeroPoint[0])}
    buffer = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers or []) else None
    constant = buffer is not None and buffer.data is not None and len(buffer.data) > 0
    return {
        "name": _text(tensor.name),
        "dtype": dtype,
        "shape": [int(d) for d in (tensor.shape if tensor.shape is not None else [])],
        "quantization": record,
        "per_channel": quant is not None and quant.scale is not None and len(quant.scale) > 1,
        "constant": constant,
        "sparse": tensor.sparsity is not None,
    }


def tflite_io_tensors(model_bytes: bytes) -> dict[str, list[dict[str, Any]]]:
    """The main subgraph's input and output tensors: name, dtype, shape, quantisation."""
    model = read_tflite(model_bytes)
    graph = model.subgraphs[0]
    return {
        which: [_tensor_record(model, graph.tensors[i]) for i in getattr(graph, which + "s")]
        for which in ("input", "output")
    }


def tflite_op_report(model_bytes: bytes) -> dict[str, Any]:
    """Ops of a .tflite file, in execution order, with their tensors' dtypes.

    Returns:
        ``operators`` (op name -> count), ``op_dtypes`` (op name -> dtypes it touches),
        ``tensor_dtypes`` (dtype -> count), ``float_ops`` (ops touching a float tensor, by
        index and name), ``sparse_tensors``, ``io`` (input/output tensors), and
        ``execution`` (per op: name, input and output tensor indices, for memory planning);
        the private keys (``_tensors``, ``_execution``, ``_blockwise_tensors``) stay out of the
        manifest.
    """
    model = read_tflite(model_bytes)
    op_names = _enum_names(_schema().BuiltinOperator)
    codes = []
    for code in model.operatorCodes or []:
        number = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = op_names.get(number, f"BUILTIN_{number}")
        codes.append(f"CUSTOM:{_text(code.customCode)}" if name == "CUSTOM" else name)
    graph = model.subgraphs[0]
    tensors = [_tensor_record(model, t) for t in graph.tensors or []]
    counts: Counter[str] = Counter()
    op_dtypes: dict[str, set[str]] = {}
    float_ops = []
    execution = []
    for index, op in enumerate(graph.operators or []):
        name = codes[op.opcodeIndex]
        counts[name] += 1
        ins = [int(i) for i in (op.inputs if op.inputs is not None else []) if i >= 0]
        outs = [int(i) for i in (op.outputs if op.outputs is not None else []) if i >= 0]
        dtypes = {tensors[i]["dtype"] for i in ins + outs}
        op_dtypes.setdefault(name, set()).update(dtypes)
        if dtypes & set(FLOAT_TYPES):
            float_ops.append({"index": index, "op": name, "dtypes": sorted(dtypes)})
        execution.append({"op": name, "inputs": ins, "outputs": outs})
    return {
        "format": "tflite",
        "operators": dict(sorted(counts.items())),
        "op_dtypes": {k: sorted(v) for k, v in sorted(op_dtypes.items())},
        "tensor_dtypes": dict(sorted(Counter(t["dtype"] for t in tensors).items())),
        "float_ops": float_ops,
        "sparse_tensors": sum(t["sparse"] for t in tensors),
        "subgraphs": len(model.subgraphs),
        "io": {
            "inputs": [tensors[i] for i in graph.inputs],
            "outputs": [tensors[i] for i in graph.outputs],
        },
        "_tensors": tensors,
        "_execution": execution,
        "_blockwise_tensors": sum(_blockwise(t) for t in graph.tensors or []),
    }


def _blockwise(tensor) -> bool:
    """Whether a tensor is quantised in blocks (the LiteRT Quantizer's ``BLOCKWISE_*``)."""
    quant = tensor.quantization
    details = _schema().QuantizationDetails.BlockwiseQuantization
    return quant is not None and quant.detailsType == details


def _onnx_dtype_names() -> dict[int, str]:
    import onnx

    # ONNX says FLOAT/DOUBLE; the reports use numpy's names, as the TFLite ones do.
    renamed = {"float": "float32", "double": "float64"}
    return {
        value: renamed.get(name.lower(), name.lower())
        for name, value in onnx.TensorProto.DataType.items()
        if name != "UNDEFINED"
    }


def onnx_op_report(model) -> dict[str, Any]:
    """Ops of an in-memory ``onnx.ModelProto`` with their tensors' dtypes (shape-inferred).

    An op "touches float" unless it is a QuantizeLinear/DequantizeLinear or sits between them:
    in the QDQ format every integer op is written as DQ -> float op -> Q, which onnxruntime
    (and NPU compilers) fuse into one integer kernel.
    """
    import onnx

    names = _onnx_dtype_names()
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    dtypes: dict[str, str] = {}
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        dtypes[info.name] = names.get(info.type.tensor_type.elem_type, "undefined")
    initializers = {init.name for init in graph.initializer}
    for init in graph.initializer:
        dtypes[init.name] = names.get(init.data_type, "undefined")
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    counts: Counter[str] = Counter()
    op_dtypes: dict[str, set[str]] = {}
    float_ops = []
    qdq = ("QuantizeLinear", "DequantizeLinear")
    for index, node in enumerate(graph.node):
        counts[node.op_type] += 1
        touched = {dtypes.get(n, "undefined") for n in list(node.input) + list(node.output) if n}
        op_dtypes.setdefault(node.op_type, set()).update(touched)
        if node.op_type in qdq:
            continue
        float_in = [
            n for n in node.input if n and n not in initializers and dtypes.get(n) in FLOAT_TYPES
        ]
        float_out = [n for n in node.output if dtypes.get(n) in FLOAT_TYPES]
        wrapped_in = all(
            producers.get(n) is not None and producers[n].op_type == "DequantizeLinear"
            for n in float_in
        )
        wrapped_out = all(
            n not in graph_outputs
            and consumers.get(n)
            and all(c.op_type == "QuantizeLinear" for c in consumers[n])
            for n in float_out
        )
        if (float_in or float_out) and not (wrapped_in and wrapped_out):
            float_ops.append({"index": index, "op": node.op_type, "dtypes": sorted(touched)})
    io = {
        "inputs": [_onnx_io(i, names) for i in graph.input if i.name not in initializers],
        "outputs": [_onnx_io(o, names) for o in graph.output],
    }
    return {
        "format": "onnx",
        "opset": max(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None
        ),
        "operators": dict(sorted(counts.items())),
        "op_dtypes": {k: sorted(v) for k, v in sorted(op_dtypes.items())},
        "tensor_dtypes": dict(sorted(Counter(dtypes.values()).items())),
        "float_ops": float_ops,
        "io": io,
    }


def _onnx_io(info, names: dict[int, str]) -> dict[str, Any]:
    shape = [
        int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or None)
        for d in info.type.tensor_type.shape.dim
    ]
    return {"name": info.name, "dtype": names.get(info.type.tensor_type.elem_type), "shape": shape}


def public_report(report: dict[str, Any], *, max_float_ops: int = 20) -> dict[str, Any]:
    """The report as stored in the manifest: private planning data dropped, lists capped."""
    out = {k: v for k, v in report.items() if not k.startswith("_")}
    floats = out.get("float_ops", [])
    out["num_float_ops"] = len(floats)
    out["float_ops"] = floats[:max_float_ops]
    return out


def tensor_bytes(record: dict[str, Any]) -> int:
    """Bytes of a tensor from its shape and dtype (unknown dims count as 1)."""
    return int(np.prod([max(1, d) for d in record["shape"]] or [1])) * ITEM_BYTES.get(
        record["dtype"], 4
    )
