"""The ``edgesmith export`` sub-command: parse, call :func:`edgesmith.export.export_formats`, print.

This module is imported by ``edgesmith --help``; it loads no TensorFlow (the handler imports
the exporter). The texts are in ``export/help/``. Progress goes to stderr; stdout gets the
summary table, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json

from edgesmith.core.cli_args import add_command, add_output_flags, add_settings, config_from_args
from edgesmith.core.errors import CheckFailed
from edgesmith.export.formats import format_lines
from edgesmith.export.options import ExportOptions

HELP = "edgesmith.export"


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``export`` parser to the CLI's sub-commands."""
    parser = add_command(commands, "export", HELP, cmd_export, formats=format_lines())
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
