"""The ``edgesmith export`` sub-command: parse, call :func:`edgesmith.export.export_formats`, print.

This module is imported by ``edgesmith --help``; it loads no TensorFlow (the handler imports
the exporter). Progress goes to stderr; stdout gets the summary table, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from edgesmith.core.cli_args import formatter
from edgesmith.core.errors import CheckFailed
from edgesmith.export.formats import FORMATS, IO_DTYPES, TARGETS
from edgesmith.export.options import DEFAULT_OPSET

EPILOG = """\
examples:
  edgesmith export --from runs/r8 --format tflite-int8 --out runs/r8-export
  edgesmith export --from runs/r8 --format tflite-fp32,tflite-int8,onnx,onnx-int8 --out exp
  edgesmith export --from runs/r8 --format tflite-int8 --raw-input --io-dtype uint8 \\
      --target tflm --c-array --out mcu
  edgesmith export --from runs/r8 --format tflite-int8 --target ethos-u55-128 --out npu
  edgesmith export --from runs/r8 --format all --out exp --json | jq '.[].metrics.parity'

formats:
{formats}
  all                 every format above

Each format goes to OUT/<format>/ with model.tflite or model.onnx and a manifest. Every file
is run with its own runtime (LiteRT, onnxruntime) on the source's eval split and compared with
the Keras model: float formats must agree on >= 99.9% of images and within 1e-4 (fp16: 99.5%,
1e-2 on probabilities). Integer formats are judged on accuracy: a file fails when the eval
images show, by McNemar's exact test on the paired per-image correctness (one-sided p < 0.05),
that it is more than --max-accuracy-drop points (default 1.0) less accurate than its source, or
when it agrees with the source on < 50% of images (catastrophic breakage); agreement, the drop,
its 95% interval and the p-value are in the manifest. A file that fails is not published and the
command exits 1, unless --allow-mismatch.

exit codes: 0 all files pass, 1 a parity or target check failed, 2 bad input
"""


def _format_lines() -> str:
    return "\n".join(f"  {f.name:<19} {f.description}" for f in FORMATS.values())


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``export`` parser to the CLI's sub-commands."""
    parser = commands.add_parser(
        "export",
        formatter_class=formatter,
        help="export a Keras artifact to TFLite/ONNX files, each checked against it",
        description="Convert a Keras artifact (trained or compressed) into deployable files and\n"
        "prove each computes what the source computes (parity on the eval split).",
        epilog=EPILOG.format(formats=_format_lines()),
    )
    parser.add_argument(
        "--from", dest="source", required=True, metavar="DIR", help="Keras artifact directory"
    )
    parser.add_argument(
        "--format",
        dest="formats",
        required=True,
        metavar="F[,F...]",
        help="formats to write (see below)",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="directory for one sub-directory per format"
    )
    parser.add_argument(
        "--raw-input",
        action="store_true",
        help="fold the input normalisation in: the file takes raw pixels",
    )
    parser.add_argument(
        "--io-dtype",
        choices=IO_DTYPES,
        default="int8",
        help="tflite-int8 input/output dtype (default: int8)",
    )
    parser.add_argument(
        "--calibration-samples",
        type=int,
        default=500,
        metavar="N",
        help="training images for int8 calibration (default: 500)",
    )
    parser.add_argument(
        "--data", metavar="SPEC", help="calibrate and check on this data instead of the source's"
    )
    parser.add_argument(
        "--max-eval",
        type=int,
        metavar="N",
        help="check parity on the first N eval images (default: all)",
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})"
    )
    parser.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=1.0,
        metavar="POINTS",
        help="int8 files: most accuracy, in percentage points 0..100, a file may lose against "
        "its source before parity fails (McNemar exact test, p < 0.05; default: 1.0)",
    )
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="publish files that fail parity (manifest says fail), exit 0",
    )
    parser.add_argument(
        "--target",
        choices=TARGETS,
        help="fail files that this target cannot run (int8-only: no float op; "
        "tflm: TFLite Micro runs it, reports flash and its measured arena; ethos-u55-128, "
        "ethos-u55-256, ethos-u65-256, ethos-u85-256: Arm Vela compiles it and estimates "
        "NPU/CPU ops, SRAM, flash and time)",
    )
    parser.add_argument(
        "--c-array",
        action="store_true",
        help="also write model_data.cc/.h (TFLite formats), as xxd -i",
    )
    parser.add_argument(
        "--sparse",
        action="store_true",
        help="sparse weight encoding for pruned models (tflite-fp32, tflite-int8)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--json", action="store_true", help="print the written manifests as a JSON list on stdout"
    )
    parser.add_argument(
        "--trust-model",
        dest="trust_model",
        action="store_true",
        help="load a --from model file that runs code when loaded (see SECURITY.md)",
    )
    parser.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """``edgesmith export``: returns 0, or 1 when a file failed its checks."""
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.export.options import ExportOptions

    options = ExportOptions(
        raw_input=args.raw_input,
        io_dtype=args.io_dtype,
        calibration_samples=args.calibration_samples,
        opset=args.opset,
        allow_mismatch=args.allow_mismatch,
        target=args.target,
        c_array=args.c_array,
        sparse=args.sparse,
        data=args.data,
        max_eval=args.max_eval,
        max_accuracy_drop=args.max_accuracy_drop,
    )
    from edgesmith.export.exporter import export_formats
    from edgesmith.tfkeras.model_safety import trusting_model_code

    with trusting_model_code(args.trust_model):
        results = export_formats(
            args.source,
            args.formats,
            args.out,
            report=stderr_reporter(args.quiet),
            **options.to_dict(),
        )
    if args.json:
        print(json.dumps([_json_record(r) for r in results], indent=2))
    else:
        print(summary_table(results))
    failed = [r.failure for r in results if r.failure and r.artifact is None]
    if failed:  # exit 1 through the one mechanism every failed check uses
        raise CheckFailed("; ".join(failed))
    return 0


def _json_record(result) -> dict[str, Any]:
    if result.artifact is not None:
        return {"path": str(result.artifact.path), **result.artifact.manifest}
    return {
        "technique": result.name,
        "path": None,
        "metrics": result.metrics,
        "failure": result.failure,
    }


def summary_table(results) -> str:
    """One row per format: size raw/gzip, accuracy, agreement, max abs diff, verdict, path."""
    header = (
        "format",
        "size B",
        "gzip B",
        "accuracy",
        "agreement",
        "max abs diff",
        "parity",
        "path",
    )
    rows = []
    for r in results:
        m = r.metrics
        verdict = (
            m.get("parity", "-")
            if r.failure is None or "parity" in (r.failure or "")
            else "target fail"
        )
        rows.append(
            (
                r.name,
                f"{m['size_bytes']:,}" if "size_bytes" in m else "-",
                f"{m['gzip_bytes']:,}" if "gzip_bytes" in m else "-",
                f"{m['accuracy']:.4f}" if "accuracy" in m else "-",
                f"{m['agreement']:.4f}" if "agreement" in m else "-",
                f"{m['max_abs_diff']:.3g}" if "max_abs_diff" in m else "-",
                verdict,
                str(r.artifact.path) if r.artifact is not None else "(not written)",
            )
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    right = {1, 2, 3, 4, 5}

    def line(row) -> str:
        cells = [
            str(c).rjust(widths[i]) if i in right else str(c).ljust(widths[i])
            for i, c in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
