"""The ``edgesmith export`` sub-command: parse, call :func:`edgesmith.export.export_formats`, print.

This module is imported by ``edgesmith --help``; it loads no TensorFlow (the handler imports
the exporter). Progress goes to stderr; stdout gets the summary table, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json

from edgesmith.core.cli_args import add_output_flags, add_settings, config_from_args, formatter
from edgesmith.core.errors import CheckFailed
from edgesmith.export.formats import FORMATS
from edgesmith.export.options import ExportOptions

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
        "--format", dest="formats", required=True, metavar="F[,F...]", help="formats (see below)"
    )
    add_settings(parser, ExportOptions)
    add_output_flags(
        parser,
        out="directory for one sub-directory per format",
        config=False,
        json_help="print the written manifests as a JSON list on stdout",
    )
    parser.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """``edgesmith export``: returns 0, or 1 when a file failed its checks."""
    from edgesmith.core.progress import stderr_reporter

    options = config_from_args(ExportOptions, args)
    from edgesmith.export.exporter import export_formats
    from edgesmith.export.summary import json_record, summary_table

    results = export_formats(
        args.source, args.formats, args.out, report=stderr_reporter(args.quiet), **options.to_dict()
    )
    if args.json:
        print(json.dumps([json_record(r) for r in results], indent=2))
    else:
        print(summary_table(results))
    failed = [r.failure for r in results if r.failure and r.artifact is None]
    if failed:  # exit 1 through the one mechanism every failed check uses
        raise CheckFailed("; ".join(failed))
    return 0
