"""The ``edgesmith compress`` sub-commands: parse, build a config, call the technique, print.

The flags come from the technique configs' fields (:func:`edgesmith.core.cli_args.add_settings`),
so a setting's name, default, help and range are written once, in ``compress/config.py``; the
texts are in ``compress/help/``. Imported whenever the CLI builds its parser, so it imports
nothing heavy: every handler checks its config and its ``--from``/``--teacher`` artifacts first
(milliseconds, no TensorFlow), and only then imports the technique (through the registry).
Progress goes to stderr; stdout gets the artifact path, or the manifest as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgesmith.compress import config as cc
from edgesmith.compress.source import check_inputs
from edgesmith.core.cli_args import (
    add_command,
    add_output_flags,
    add_settings,
    config_from_args,
    flag_name,
    given_settings,
    print_artifact,
)
from edgesmith.core.config import load_config_file, settings_of
from edgesmith.core.errors import EdgesmithError

HELP = "edgesmith.compress"
TUNED = {"qat": cc.QatConfig, "cluster": cc.ClusterConfig, "distill": cc.DistillConfig}
"""The techniques whose handler is only: config, precheck, run (prune picks its config)."""


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``compress`` parser and its technique sub-parsers to the CLI."""
    parser = add_command(commands, "compress", HELP)
    techniques = parser.add_subparsers(dest="technique", metavar="TECHNIQUE", required=True)
    prune = _technique(techniques, "prune", cmd_technique)
    _settings(prune, cc.PruneConfig)
    add_settings(prune, cc.ChannelPruneConfig)
    _settings(_technique(techniques, "qat", cmd_technique), cc.QatConfig)
    distill = _technique(techniques, "distill", cmd_technique, source="--teacher")
    _settings(distill, cc.DistillConfig, required=("student",))
    _settings(_technique(techniques, "cluster", cmd_technique), cc.ClusterConfig, ("clusters",))
    sensitivity = _technique(techniques, "sensitivity", cmd_sensitivity)
    sensitivity.add_argument("--no-plot", dest="no_plot", action="store_true", help="no FILE.png")
    add_settings(sensitivity, cc.SensitivityConfig)
    quantize = _technique(techniques, "quantize", cmd_quantize)
    add_settings(quantize, cc.AutotuneConfig, required=("max_accuracy_drop",))
    quantize.add_argument("--epochs", type=int, help="the QAT attempt's epochs (default: 2)")
    recipe = _technique(techniques, "recipe", cmd_recipe)
    recipe.add_argument("--recipe", required=True, metavar="FILE", help="YAML or JSON recipe")


def _technique(techniques, name: str, handler, *, source: str = "--from"):
    """A technique's parser with its source artifact flag and the output flags."""
    parser = add_command(techniques, name, HELP, handler)
    what = "teacher Keras artifact" if source == "--teacher" else "Keras artifact directory"
    parser.add_argument(source, dest="source", required=True, metavar="DIR", help=what)
    if name == "sensitivity":
        add_output_flags(
            parser,
            out="JSON file to write",
            out_metavar="FILE",
            json_help="print the JSON on stdout",
            overwrite="replace FILE.json/.md/.png even if edgesmith did not write them",
        )
    elif name == "recipe":
        add_output_flags(parser, out="new directory for the steps", config=False)
    else:
        add_output_flags(parser)
    return parser


def _settings(parser: argparse.ArgumentParser, cls: type, required: tuple[str, ...] = ()) -> None:
    """The technique's own flags, then its fine-tuning flags in their own group."""
    own = tuple(name for name in settings_of(cls) if name not in settings_of(cc.FinetuneConfig))
    add_settings(parser, cls, skip=tuple(settings_of(cc.FinetuneConfig)), required=required)
    group = parser.add_argument_group("fine-tuning")
    skip = ("teacher",) if cls is cc.DistillConfig else ()
    add_settings(group, cls, skip=(*own, *skip))


def _run(args: argparse.Namespace, config):
    """Run the technique ``args.technique`` names (importing it: TensorFlow loads here)."""
    from edgesmith.compress.registry import TECHNIQUES
    from edgesmith.core.progress import stderr_reporter

    run = TECHNIQUES[args.technique].load()
    return run(args.source, config, args.out, report=stderr_reporter(args.quiet))


def prune_config(args: argparse.Namespace) -> cc.PruneConfig | cc.ChannelPruneConfig:
    """The prune command's config: channel pruning's for ``--structure channels``.

    Raises:
        EdgesmithError: for a flag the chosen kind of pruning does not use (it would be
            ignored), or a value the config refuses.
    """
    file = load_config_file(args.config) if args.config else {}
    structure = args.structure or file.get("structure", "unstructured")
    cls = cc.ChannelPruneConfig if structure == "channels" else cc.PruneConfig
    other = cc.PruneConfig if cls is cc.ChannelPruneConfig else cc.ChannelPruneConfig
    for name in given_settings(args, other).keys() - settings_of(cls).keys():
        flag = flag_name(name, settings_of(other)[name][1])
        raise EdgesmithError(f"{flag} does not apply to --structure {structure}")
    return config_from_args(cls, args)


def cmd_technique(args: argparse.Namespace) -> int:
    """``edgesmith compress prune|qat|cluster|distill``: check everything, then fine-tune.

    Distillation's source is the teacher, and the student must fit the teacher's data.
    """
    if args.technique == "prune":
        config = prune_config(args)
    else:
        config = config_from_args(TUNED[args.technique], args)
    role = "--teacher" if args.technique == "distill" else "--from"
    check_inputs(args.source, config, args.out, role=role)
    return print_artifact(args, _run(args, config))


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """``edgesmith compress sensitivity``."""
    from edgesmith.compress.source import check_sensitivity_outputs, read_keras_source
    from edgesmith.core.progress import stderr_reporter

    config = config_from_args(cc.SensitivityConfig, args)
    check_sensitivity_outputs(args.out, overwrite=args.overwrite)
    read_keras_source(args.source)
    from edgesmith.compress.sensitivity import PLOT_HINT, analyse_sensitivity, plots_available

    plot = not args.no_plot
    if plot and not plots_available():  # said up front, and even with --quiet
        print(f"edgesmith: note: plot skipped: {PLOT_HINT}", file=sys.stderr)
        plot = False
    report = stderr_reporter(args.quiet)
    document = analyse_sensitivity(
        args.source, config, args.out, report=report, plot=plot, overwrite=args.overwrite
    )
    print(json.dumps(document, indent=2) if args.json else args.out)
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    """``edgesmith compress quantize``: exit 1 when no attempt met the budget."""
    qat = {} if args.epochs is None else {"qat": {"epochs": args.epochs}}
    config = config_from_args(cc.AutotuneConfig, args, **qat)
    check_inputs(args.source, config, args.out)
    from edgesmith.compress.autotune import SUMMARY, unmet_budget
    from edgesmith.core.errors import CheckFailed
    from edgesmith.core.outputs import OutputLock

    with OutputLock(args.out):  # a second run into the same --out exits 2 at once
        chosen = _run(args, config)
    print((Path(args.out) / SUMMARY).read_text().rstrip() if args.json else chosen.path)
    failure = unmet_budget(args.out)
    if failure:
        raise CheckFailed(failure)
    return 0


def cmd_recipe(args: argparse.Namespace) -> int:
    """``edgesmith compress recipe``: the whole recipe and its teachers are checked first."""
    from edgesmith.compress.recipes import SUMMARY, run_recipe
    from edgesmith.core.progress import stderr_reporter

    artifacts = run_recipe(args.source, args.recipe, args.out, report=stderr_reporter(args.quiet))
    paths = "\n".join(str(artifact.path) for artifact in artifacts)
    print((Path(args.out) / SUMMARY).read_text().rstrip() if args.json else paths)
    return 0
