"""Hostile inputs against the installed edgesmith CLI: every case exits 2 with one line (issue 23).

Each case builds its hostile file(s) in a fresh temporary folder, runs one ``edgesmith`` command
on them in a child process (with an address-space limit and a timeout) and judges the outcome:

* the exit code is the documented one (2 for bad input; 0 for the benign controls);
* the error is exactly one line (``edgesmith: error: ...``), the last on stderr (the command's
  own progress lines may come before it), and there is no ``Traceback``;
* nothing that was in the case's folder before the run was changed or deleted (the "user's"
  files, and the hostile files themselves), and no code from a file ran (a marker file the
  hostile payload would write does not appear).

It prints a table (case, command, exit, peak RSS, seconds, first line of stderr, verdict) and
writes the rows as JSON with ``--json-out``. Usage::

    .venv/bin/python bench/hostile.py --json-out bench/hostile.json [--only SUBSTRING]

The inputs come from the committed test fixtures (``tests/runtime/fixtures``): tiny digits
models, a .tflite artifact. No network, no training; the model-file cases import TensorFlow in
the child, so they take a few seconds each.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import json
import marshal
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "runtime" / "fixtures"
MARKER = "CODE-RAN"  # a hostile payload would create this file in the case folder


@dataclasses.dataclass
class Case:
    """One hostile input: ``make(folder)`` writes the files and returns the CLI arguments."""

    name: str
    what: str
    make: Callable[[Path], list[str]]
    expect: int = 2


@dataclasses.dataclass
class Row:
    case: str
    what: str
    command: str
    exit: int
    expected: int
    lines: int
    first_line: str  # the error line (or, for a benign run, the first line)
    error_chars: int  # the whole error line's length, the scratch folder shown as $TMP
    peak_rss_mb: float
    seconds: float
    clobbered: list[str]
    code_ran: bool
    verdict: str


# ---------------------------------------------------------------------------------------------
# Builders


def _tflite_doc(model_bytes: bytes) -> dict:
    from edgesmith.runtime.embedded_metadata import read_tflite_metadata

    return read_tflite_metadata(model_bytes)


def _repack_tflite(model_bytes: bytes, mutate) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    mutate(model, schema)
    builder = flatbuffers.Builder(len(model_bytes) + (2 << 20))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tflite_payload(payload: bytes) -> Callable[[Path], list[str]]:
    """A .tflite whose edgesmith metadata buffer holds ``payload`` exactly."""

    def make(folder: Path) -> list[str]:
        def mutate(model, schema):
            (entry,) = [m for m in model.metadata if m.name.decode() == "edgesmith"]
            model.buffers[entry.buffer].data = np.frombuffer(payload, dtype=np.uint8)

        path = folder / "model.tflite"
        path.write_bytes(_repack_tflite((FIXTURES / "int8.tflite").read_bytes(), mutate))
        return ["bench", str(path), "--data", "digits", "--min-runs", "3", "--min-seconds", "0"]

    return make


def _tflite_doc_change(change: Callable[[dict], None]) -> Callable[[Path], list[str]]:
    document = _tflite_doc((FIXTURES / "int8.tflite").read_bytes())
    change(document)
    return _tflite_payload(json.dumps(document, allow_nan=True).encode())


def _norm(**values) -> Callable[[dict], None]:
    return lambda d: d["input"]["normalization"].update(values)


def _tflite_structure(mutate) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        path = folder / "evil.tflite"
        path.write_bytes(_repack_tflite((FIXTURES / "float.tflite").read_bytes(), mutate))
        return ["bench", str(path), "--data", "digits"]

    return make


def _custom_op(model, schema) -> None:
    code = model.operatorCodes[0]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = b"EvilOp"


def _tensor_index(model, schema) -> None:
    model.subgraphs[0].operators[0].inputs = np.asarray([9999], dtype=np.int32)


def _buffer_index(model, schema) -> None:
    for tensor in model.subgraphs[0].tensors:
        tensor.buffer = 10**6


def _truncated(source: str, keep: float) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        data = (FIXTURES / source).read_bytes()
        path = folder / f"cut{Path(source).suffix}"
        path.write_bytes(data[: int(len(data) * keep)])
        return ["bench", str(path), "--data", "digits"]

    return make


def _onnx_int8(name: bytes, raw: bytes | None, metadata: str | None = None):
    """An int8-input ONNX graph; its scale initializer named ``name`` with ``raw`` data."""

    def make(folder: Path) -> list[str]:
        from onnx import TensorProto, helper

        placeholder = "S" * len(name)
        scale = helper.make_tensor(placeholder, TensorProto.FLOAT, [], [0.5])
        if raw is not None:
            scale.ClearField("float_data")
            scale.raw_data = raw
        graph = helper.make_graph(
            [
                helper.make_node("DequantizeLinear", ["x", placeholder], ["d"]),
                helper.make_node("Flatten", ["d"], ["f"]),
                helper.make_node("Softmax", ["f"], ["y"]),
            ],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 8, 8, 1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
            [scale],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        if metadata is not None:
            entry = model.metadata_props.add()
            entry.key, entry.value = "edgesmith", metadata
        path = folder / "evil.onnx"
        path.write_bytes(model.SerializeToString().replace(placeholder.encode(), name))
        return ["bench", str(path), "--data", "digits"]

    return make


def _onnx_metadata(change: Callable[[dict], None] | None, text: str | None = None):
    """The committed int8 ONNX fixture with its embedded document changed."""

    def make(folder: Path) -> list[str]:
        import onnx

        model = onnx.load(str(FIXTURES / "int8_io.onnx"))
        (entry,) = [p for p in model.metadata_props if p.key == "edgesmith"]
        if change is not None:
            document = json.loads(entry.value)
            change(document)
            entry.value = json.dumps(document, allow_nan=True)
        else:
            entry.value = text
        path = folder / "evil.onnx"
        path.write_bytes(model.SerializeToString())
        return ["bench", str(path), "--data", "digits"]

    return make


def _special(kind: str) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        if kind == "dev-zero":
            return ["bench", "/dev/zero", "--data", "digits"]
        path = folder / "pipe.tflite"
        os.mkfifo(path)
        return ["bench", str(path), "--data", "digits"]

    return make


def _h5(folder: Path, config: dict, name: str = "evil.h5") -> Path:
    import h5py

    path = folder / name
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = json.dumps(config)
        handle.attrs["keras_version"] = "2.15.0"
        handle.attrs["backend"] = "tensorflow"
        handle.create_group("model_weights")
    return path


def _lambda_payload(folder: Path) -> list:
    code = compile(f"open({str(folder / MARKER)!r}, 'w').write('ran')", "<evil>", "exec")
    return [base64.b64encode(marshal.dumps(code)).decode(), None, None]


def _import(model: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        return ["import", "--model", str(model(folder)), "--data", "digits", "--out",
                str(folder / "imported")]  # fmt: skip

    return make


def _h5_lambda(folder: Path) -> Path:
    layers = [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 8, 8, 1]}},
        {"class_name": "Lambda",
         "config": {"function": _lambda_payload(folder), "function_type": "lambda"}},
    ]  # fmt: skip
    return _h5(folder, {"class_name": "Sequential", "config": {"name": "s", "layers": layers}})


def _h5_residual_wrapper(folder: Path) -> Path:
    cell = {
        "class_name": "ResidualWrapper",
        "config": {
            "cell": {"class_name": "SimpleRNNCell", "config": {"units": 8}},
            "residual_fn": _lambda_payload(folder),
            "residual_fn_type": "lambda",
        },
    }
    layers = [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 8, 8]}},
        {"class_name": "RNN", "config": {"cell": cell}},
    ]
    return _h5(folder, {"class_name": "Sequential", "config": {"name": "s", "layers": layers}})


def _h5_unbuilt(folder: Path) -> Path:
    layers = [{"class_name": "Dense", "config": {"name": "d", "units": 10}}]
    return _h5(folder, {"class_name": "Sequential", "config": {"name": "s", "layers": layers}})


def _keras_zip(method: int) -> Callable[[Path], Path]:
    """A .keras zip whose members claim compression ``method`` (99: AES, unsupported)."""

    def make(folder: Path) -> Path:
        path = folder / "evil.keras"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("config.json", json.dumps({"class_name": "Sequential"}))
            archive.writestr("metadata.json", "{}")
        data = bytearray(path.read_bytes())
        for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
            start = 0
            while (start := data.find(signature, start)) != -1:
                data[start + offset : start + offset + 2] = method.to_bytes(2, "little")
                start += 4
        path.write_bytes(bytes(data))
        return path

    return make


def _profile(body: str) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        path = folder / "device.yaml"
        path.write_text(body)
        return ["bench", str(FIXTURES / "float.tflite"), "--data", "digits", "--device",
                str(path), "--min-runs", "3", "--min-seconds", "0"]  # fmt: skip

    return make


PROFILE = """name: evil
runtime: litert
threads: {threads}
formats: [tflite-fp32]
budgets:
  max_size_kb: 512
  max_latency_ms: {latency}
"""
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)

_BASELINE: dict = {}


def _baseline(change: Callable[[dict], None]) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        if not _BASELINE:  # one real bench document, made once, then mutated per case
            with tempfile.TemporaryDirectory() as scratch:
                out = Path(scratch) / "base.json"
                subprocess.run(
                    [EDGESMITH, "bench", str(FIXTURES / "float.tflite"), "--data", "digits",
                     "--min-runs", "5", "--min-seconds", "0", "--json-out", str(out)],
                    check=True, capture_output=True,
                )  # fmt: skip
                _BASELINE.update(json.loads(out.read_text()))
        document = json.loads(json.dumps(_BASELINE))
        change(document)
        path = folder / "base.json"
        path.write_text(json.dumps(document, allow_nan=True))
        return ["check", str(FIXTURES / "float.tflite"), "--baseline", str(path)]

    return make


def _set(*keys, value):
    def change(document: dict) -> None:
        target = document
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _manifest(change: Callable[[dict], None] | str) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        artifact = folder / "artifact"
        shutil.copytree(FIXTURES / "artifact_tflite", artifact)
        path = artifact / "manifest.json"
        if change == "symlink":
            outside = folder / "elsewhere.json"
            shutil.copy(path, outside)
            path.unlink()
            path.symlink_to(outside)
        else:
            document = json.loads(path.read_text())
            change(document)
            path.write_text(json.dumps(document, allow_nan=True))
        return ["info", str(artifact)]

    return make


def _report_over_user_file(kind: str) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        notes = folder / "notes.md"
        notes.write_text("the user's notes\n")
        target = notes
        if kind == "link":
            target = folder / "link.md"
            target.symlink_to(notes)
        flag = "--report" if kind != "json" else "--json-out"
        return ["bench", str(FIXTURES / "float.tflite"), "--data", "digits", flag, str(target),
                "--min-runs", "3", "--min-seconds", "0"]  # fmt: skip

    return make


def _earlier_build(added: str) -> Callable[[Path], list[str]]:
    """A folder as an earlier build leaves it, plus a file the user added at ``added``."""

    def make(folder: Path) -> list[str]:
        from edgesmith.app.build.folders import claim_build_dir, fresh_stage, publish_dir

        out = folder / "build"
        work = claim_build_dir(out)
        for final, files in ((out / "bundle", ["model.tflite", "plots/latency.png"]),
                             (work / "bench", ["report.md"])):  # fmt: skip
            stage = fresh_stage(final, "edgesmith build (hostile bench)")
            for name in files:
                (stage / name).parent.mkdir(parents=True, exist_ok=True)
                (stage / name).write_text("edgesmith's")
            publish_dir(stage, final)
        (out / added).write_text("the user's")
        return ["build", "--device", "cpu-x86", "--data", "digits", "--out", str(out)]

    return make


TINY_MODEL = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tf_keras as k
model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(),
                      k.layers.Dense(10, activation="softmax")])
model.save(sys.argv[1])
"""


def _published_partial(folder: Path) -> list[str]:
    """A published artifact named ``run.partial``; another run then writes ``--out run``."""
    shutil.copytree(FIXTURES / "artifact_tflite", folder / "run.partial")
    from edgesmith.core.outputs import seal_owned_dir

    seal_owned_dir(folder / "run.partial", purpose="artifact")
    model = folder / "tiny.h5"
    subprocess.run([sys.executable, "-c", TINY_MODEL, str(model)], check=True,
                   capture_output=True)  # fmt: skip
    return ["import", "--model", str(model), "--data", "digits", "--out", str(folder / "run")]


CASES = [
    Case("bench-benign", "control: a good .tflite", _tflite_doc_change(lambda d: None), 0),
    Case("meta-nan-std", "embedded std NaN", _tflite_doc_change(_norm(std=[float("nan")]))),
    Case("meta-zero-std", "embedded std 0", _tflite_doc_change(_norm(std=[0.0]))),
    Case("meta-inf-std", "embedded std inf", _tflite_doc_change(_norm(std=[float("inf")]))),
    Case("meta-negative-scale", "embedded scale -1", _tflite_doc_change(_norm(scale=-1.0))),
    Case("meta-string-mean", "embedded mean 'x'", _tflite_doc_change(_norm(mean="x"))),
    Case("meta-quant-nan", "embedded quantization scale NaN",
         _tflite_doc_change(_set("input", "quantization", value={"scale": float("nan"),
                                                                  "zero_point": 0}))),
    Case("meta-quant-type", "embedded quantization a string",
         _tflite_doc_change(_set("input", "quantization", value="int8"))),
    Case("meta-absurd-shape", "embedded shape [1e9, 1e9, 3]",
         _tflite_doc_change(_set("input", "shape", value=[10**9, 10**9, 3]))),
    Case("meta-labels-huge", "200,000 labels",
         _tflite_doc_change(_set("labels", value=["x"] * 200_000))),
    Case("meta-labels-type", "labels an object", _tflite_doc_change(_set("labels", value={}))),
    Case("meta-output-kind", "output.kind 'exec'",
         _tflite_doc_change(_set("output", value={"kind": "exec"}))),
    Case("meta-unknown-key", "unknown top-level key",
         _tflite_doc_change(_set("run", value="rm -rf /"))),
    Case("meta-not-json", "metadata not UTF-8 JSON", _tflite_payload(b"\xff\xfe{")),
    Case("meta-deep", "metadata nested 100,000 deep", _tflite_payload(b"[" * 100_000)),
    Case("meta-2mib", "metadata of 2 MiB", _tflite_payload(b" " * (2 << 20) + b"{}")),
    Case("onnx-meta-nan-std", "ONNX embedded std NaN",
         _onnx_metadata(_norm(std=[float("nan")]))),
    Case("onnx-meta-not-json", "ONNX metadata not JSON", _onnx_metadata(None, "{nope")),
    Case("tflite-custom-op", "a custom op", _tflite_structure(_custom_op)),
    Case("tflite-tensor-index", "tensor index 9999", _tflite_structure(_tensor_index)),
    Case("tflite-buffer-index", "buffer index 1e6", _tflite_structure(_buffer_index)),
    Case("tflite-truncated", "half a .tflite", _truncated("float.tflite", 0.5)),
    Case("onnx-non-utf8-name", "initializer name b'\\xff\\xfe\\xfd'",
         _onnx_int8(b"\xff\xfe\xfd", None)),
    Case("onnx-short-raw", "1 byte of float raw data", _onnx_int8(b"scale", b"\x01")),
    Case("onnx-truncated", "half an .onnx", _truncated("int8_io.onnx", 0.5)),
    Case("model-dev-zero", "/dev/zero as the model", _special("dev-zero")),
    Case("model-fifo", "a FIFO as the model", _special("fifo")),
    Case("h5-lambda", "Lambda with marshalled code", _import(_h5_lambda)),
    Case("h5-residual-wrapper", "RNN cell ResidualWrapper lambda",
         _import(_h5_residual_wrapper)),
    Case("h5-unbuilt", "unbuilt Sequential .h5", _import(_h5_unbuilt)),
    Case("keras-zip-method", "zip member compression 99", _import(_keras_zip(99))),
    Case("profile-nan-budget", "profile max_latency_ms .nan",
         _profile(PROFILE.format(threads=1, latency=".nan"))),
    Case("profile-inf-budget", "profile max_latency_ms .inf",
         _profile(PROFILE.format(threads=1, latency=".inf"))),
    Case("profile-threads", "profile threads 100000",
         _profile(PROFILE.format(threads=100000, latency=2))),
    Case("profile-alias-bomb", "YAML nested aliases", _profile(ALIAS_BOMB)),
    Case("baseline-nan", "baseline p50 NaN",
         _baseline(lambda d: d["results"][0]["latency_ms"].update(p50=float("nan")))),
    Case("baseline-threads", "baseline result threads 100000",
         _baseline(lambda d: d["results"][0].update(threads=100000))),
    Case("baseline-batch", "baseline result batch 10**12",
         _baseline(lambda d: d["results"][0].update(batch=10**12))),
    Case("manifest-normalization", "input.normalization a string",
         _manifest(_set("input", "normalization", value="unit"))),
    Case("manifest-nan-std", "input.normalization.std NaN",
         _manifest(_set("input", "normalization", "std", value=[float("nan")]))),
    Case("manifest-quantization", "input.quantization a list",
         _manifest(_set("input", "quantization", value=[1, 2]))),
    Case("manifest-output", "output a string", _manifest(_set("output", value="logits"))),
    Case("manifest-macs", "metrics.macs a string", _manifest(_set("metrics", "macs", value="1e9"))),
    Case("manifest-symlink", "manifest.json a link out", _manifest("symlink")),
    Case("report-over-notes", "bench --report notes.md", _report_over_user_file("file")),
    Case("json-out-over-notes", "bench --json-out notes.md", _report_over_user_file("json")),
    Case("report-through-link", "bench --report link -> notes", _report_over_user_file("link")),
    Case("build-bundle-user-file", "build rerun, user file in bundle/",
         _earlier_build("bundle/notes.txt")),
    Case("build-plots-user-file", "build rerun, user file in bundle/plots/",
         _earlier_build("bundle/plots/mine.png")),
    Case("build-bench-user-file", "build rerun, user file in work/bench/",
         _earlier_build("work/bench/my-run.json")),
    Case("published-x-partial", "--out run beside a published run.partial", _published_partial),
]  # fmt: skip

EDGESMITH = str(Path(sys.executable).parent / "edgesmith")
MAX_ERROR_CHARS = 300
"""An error line of about 200 characters plus a path or two; longer means a value went unclipped."""


# ---------------------------------------------------------------------------------------------
# Running and judging


def _snapshot(folder: Path) -> dict[str, str]:
    seen = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            seen[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def _limit(memory_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return apply


def run_case(case: Case, *, memory_gb: float, timeout: float) -> Row:
    with tempfile.TemporaryDirectory(prefix=f"hostile-{case.name}-") as scratch:
        folder = Path(scratch)
        args = case.make(folder)
        before = _snapshot(folder)
        command = [EDGESMITH, *args]
        started = time.perf_counter()
        with tempfile.TemporaryFile() as err:
            process = subprocess.Popen(
                command,
                cwd=folder,
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
                preexec_fn=_limit(int(memory_gb * (1 << 30))),
            )
            deadline = started + timeout
            status = usage = None
            while time.perf_counter() < deadline:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                time.sleep(0.05)
            else:
                process.kill()
                _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
            code = os.waitstatus_to_exitcode(status)
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        after = _snapshot(folder)
        clobbered = [name for name, digest in before.items() if after.get(name) != digest]
        code_ran = (folder / MARKER).exists()
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("edgesmith:")]
    # progress lines may come first (the command's own report); the error is the one last line
    one_line = case.expect == 0 or (len(errors) == 1 and lines[-1] == errors[0])
    error = (errors[0] if errors else "").replace(scratch, "$TMP")
    ok = (
        code == case.expect
        and one_line
        and len(error) <= MAX_ERROR_CHARS
        and "Traceback" not in stderr
        and not clobbered
        and not code_ran
    )
    shown = [a.replace(scratch, "$TMP") for a in args]
    return Row(
        case=case.name,
        what=case.what,
        command="edgesmith " + " ".join(shown),
        exit=code,
        expected=case.expect,
        lines=len(lines),
        first_line=((errors or lines or [""])[0]).replace(scratch, "$TMP")[:200],
        error_chars=len(error),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        seconds=round(seconds, 2),
        clobbered=clobbered,
        code_ran=code_ran,
        verdict="PASS" if ok else "FAIL",
    )


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table (what SECURITY.md shows)."""
    out = ["| case | what was tried | exit | RSS MB | s | first line of stderr | verdict |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        line = r.first_line.replace("|", "\\|")
        if len(line) > 110:
            line = line[:107] + "..."
        out.append(
            f"| {r.case} | {r.what} | {r.exit} | {r.peak_rss_mb:.0f} | {r.seconds:.1f} | "
            f"{line} | {r.verdict} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json-out", type=Path, help="write the rows as JSON here")
    parser.add_argument("--markdown-out", type=Path, help="write the Markdown table here")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--memory-gb", type=float, default=8.0, help="address-space limit")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.only or args.only in c.name]
    rows = []
    for case in cases:
        row = run_case(case, memory_gb=args.memory_gb, timeout=args.timeout)
        rows.append(row)
        print(
            f"{row.verdict} {row.case:26s} exit {row.exit} ({row.lines} line(s), "
            f"{row.seconds:.1f} s, {row.peak_rss_mb:.0f} MB) {row.first_line[:100]}",
            flush=True,
        )
    print()
    print(table(rows))
    passed = sum(r.verdict == "PASS" for r in rows)
    print(f"\n{len(rows)} cases, {passed} pass")
    if args.json_out:
        args.json_out.write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
    if args.markdown_out:
        args.markdown_out.write_text(table(rows) + "\n")
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
