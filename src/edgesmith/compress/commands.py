"""The ``edgesmith compress`` sub-commands: parse, build a config, call the technique, print.

The flags come from the technique configs' fields (:func:`edgesmith.core.cli_args.add_settings`),
so a setting's name, default, help and range are written once, in ``compress/config.py``.
Imported whenever the CLI builds its parser, so it imports nothing heavy: every handler checks
its config and its ``--from``/``--teacher`` artifacts first (milliseconds, no TensorFlow), and
only then imports the technique. Progress goes to stderr; stdout gets the artifact path, or the
manifest as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgesmith.compress import config as cc
from edgesmith.core.cli_args import (
    add_output_flags,
    add_settings,
    config_from_args,
    flag_name,
    formatter,
    given_settings,
    print_artifact,
)
from edgesmith.core.config import load_config_file, settings_of
from edgesmith.core.errors import EdgesmithError

EPILOG = """\
examples:
  edgesmith compress prune --from runs/r8 --sparsity 0.75 --epochs 8 --out runs/r8-p75
  edgesmith compress prune --from runs/r8 --structure 2:4 --out runs/r8-24
  edgesmith compress prune --from runs/r8 --structure channels --mac-reduction 0.5 --out runs/r8-c
  edgesmith compress qat --from runs/r8 --out runs/r8-qat
  edgesmith compress qat --from runs/r8-p75 --preserve-sparsity --out runs/r8-p75-qat
  edgesmith compress distill --teacher runs/r20 --student resnet8 --epochs 30 --out runs/kd
  edgesmith compress cluster --from runs/r8 --clusters 16 --out runs/r8-k16
  edgesmith compress sensitivity --from runs/r8 --out r8-sensitivity.json
  edgesmith compress quantize --from runs/r8 --max-accuracy-drop 0.5 --out runs/r8-int8
  edgesmith compress recipe --from runs/r8 --recipe distill-prune-qat.yaml --out runs/chain

Every technique reads a Keras artifact and writes a new one whose manifest records the parent,
the fully resolved config and what was measured (accuracy on the eval split, sparsity, params,
MACs). Export the result with `edgesmith export`.
"""

PRUNE = (
    "Prune while fine-tuning. unstructured: zero the smallest weights (tfmot),\n"
    "saved stripped; the file shrinks only gzipped. 2:4: two zeros in every four input\n"
    "channels. channels: remove whole filters and rebuild thinner layers, consistently\n"
    "across residual adds: fewer params, fewer MACs, a smaller file and lower latency.",
    """examples:
  edgesmith compress prune --from runs/r8 --sparsity 0.75 --epochs 8 --out runs/p75
  edgesmith compress prune --from runs/r8 --structure 2:4 --epochs 6 --out runs/p24
  edgesmith compress prune --from runs/r8 --structure channels --sparsity 0.3 --out runs/c30
  edgesmith compress prune --from runs/r8 --structure channels --mac-reduction 0.5 \\
      --ranking bn --epochs 10 --out runs/c50
  edgesmith compress prune --from runs/r8 --structure channels --mac-reduction 0.6 \\
      --round-to 8 --teacher runs/r8 --epochs 30 --out runs/c60   # distil from the dense model
  edgesmith compress prune --from runs/r8 --structure channels --max-latency-ratio 0.65 \\
      --mac-reduction 0.5 --param-reduction 0.55 --round-to 8 --epochs 30 --out runs/fast
  edgesmith compress prune --from runs/r8 --structure channels \\
      --widths stem_conv=16,stage1_block1_conv1=8,stage2_block1_conv1=16 --epochs 30 --out runs/w

unstructured and 2:4: the sparsity target holds over the whole model's conv/dense kernels
(--sparsity-scope layers: in each pruned layer); the first conv and layers with fewer than
--min-weights weights stay dense. The manifest records the sparsity measured from the saved
weights. channels takes --ranking, --mac-reduction, --round-to, --widths and the width search
(--max-latency-ratio); the others' flags are refused with it, and the reverse.""",
)
QAT = (
    "Fine-tune with int8 fake quantisation (tfmot). Layers tfmot has no int8\n"
    "rule for stay float and are named; a model tfmot cannot wrap at all is refused,\n"
    'naming the layer. The artifact is model.h5 with "qat": true in its manifest: export\n'
    "it to tflite-int8 to get the integer file (and measure its accuracy there).",
    """examples:
  edgesmith compress qat --from runs/r8 --epochs 3 --out runs/r8-qat
  edgesmith compress qat --from runs/r8-p75 --preserve-sparsity --out runs/p75-qat
  edgesmith compress qat --from runs/net --skip-layers head --out runs/net-qat
  edgesmith export --from runs/r8-qat --format tflite-int8 --out runs/r8-qat-int8""",
)
DISTILL = (
    "Knowledge distillation: loss = alpha * CE(labels, student)\n"
    "  + (1 - alpha) * T^2 * KL(softmax(teacher/T) || softmax(student/T)).\n"
    "A zoo student is trained from scratch on the teacher's data and normalisation; an\n"
    "artifact student is fine-tuned (same classes and input shape as the teacher).\n"
    "Every technique distils the same way: prune/qat/cluster take --teacher too.",
    """examples:
  edgesmith compress distill --teacher runs/r20 --student resnet8 --epochs 30 --out runs/kd
  edgesmith compress distill --teacher runs/r8 --student runs/r8-c50 --epochs 5 --alpha 0.3 \\
      --out runs/c50-kd
  edgesmith compress prune --from runs/r8 --sparsity 0.8 --teacher runs/r8 --out runs/p80-kd""",
)
CLUSTER = (
    "Cluster each layer's weights into K shared values while fine-tuning;\n"
    "saved stripped. The manifest records the distinct values measured per layer.",
    """examples:
  edgesmith compress cluster --from runs/r8 --clusters 16 --out runs/r8-k16
  edgesmith compress cluster --from runs/r8-p75 --clusters 8 --preserve-sparsity --out runs/k8""",
)
SENSITIVITY = (
    "int8: convert to int8 with the TFLite converter, report each op's error\n"
    "(RMSE / scale) and the exported file's accuracy with each conv/dense op alone left\n"
    "float. prune: prune each layer alone to each sparsity (no fine-tuning) and measure.\n"
    "Writes FILE.json, FILE.md (the table, also printed) and FILE.png (the plot; needs\n"
    'matplotlib: pip install "edgesmith[plots]").',
    """examples:
  edgesmith compress sensitivity --from runs/r8 --out r8-int8.json
  edgesmith compress sensitivity --from runs/r8 --mode prune --sparsities 0.5,0.8,0.9 \\
      --out r8-prune.json""",
)
QUANTIZE = (
    "Quantise to int8 with the cheapest method whose exported .tflite stays\n"
    "within --max-accuracy-drop points of the float model: post-training int8 first,\n"
    "then QAT, then post-training int8 with the most sensitive ops left float (one more\n"
    "per attempt). Every attempt is measured on the exported file, kept under OUT, and\n"
    "reported; OUT/autotune.json records them. Exit 1 when no attempt met the budget.",
    """examples:
  edgesmith compress quantize --from runs/r8 --max-accuracy-drop 0.5 --out runs/r8-q
  edgesmith compress quantize --from runs/r8 --max-accuracy-drop 1 --attempts ptq,float \\
      --max-float-layers 2 --out runs/r8-q""",
)
RECIPE = (
    "Run the recipe's steps in order, each from the previous step's artifact,\n"
    "each writing OUT/<n>-<technique>/. The whole recipe is validated first.",
    """examples:
  edgesmith compress recipe --from runs/r20 --recipe kd-prune-qat.yaml --out runs/chain

recipe file:
  steps:
    - distill: {student: resnet8, epochs: 30}
    - prune: {sparsity: 0.5, structure: channels, epochs: 6}
    - qat: {epochs: 2}

techniques: prune, qat, distill, cluster, quantize (their flags' names, with _)""",
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``compress`` parser and its technique sub-parsers to the CLI."""
    parser = commands.add_parser(
        "compress",
        formatter_class=formatter,
        help="prune, quantisation-aware train, distil or cluster a Keras artifact",
        description="Compress a Keras artifact; every technique writes a new artifact.",
        epilog=EPILOG,
    )
    techniques = parser.add_subparsers(dest="technique", metavar="TECHNIQUE", required=True)
    prune = _technique(techniques, "prune", "magnitude, 2:4 or channel pruning", PRUNE, cmd_prune)
    prune.add_argument(
        "--structure", choices=cc.STRUCTURES, help="what is removed (default: unstructured)"
    )
    _settings(prune, cc.PruneConfig)
    add_settings(prune, cc.ChannelPruneConfig)
    qat = _technique(techniques, "qat", "quantization-aware training (int8)", QAT, cmd_qat)
    _settings(qat, cc.QatConfig)
    distill = _technique(
        techniques, "distill", "train a student under a teacher's soft labels", DISTILL, None
    )
    distill.add_argument(
        "--teacher", dest="source", required=True, metavar="DIR", help="teacher Keras artifact"
    )
    _settings(distill, cc.DistillConfig, required=("student",))
    distill.set_defaults(handler=cmd_distill)
    cluster = _technique(techniques, "cluster", "weight clustering (tfmot)", CLUSTER, cmd_cluster)
    _settings(cluster, cc.ClusterConfig, required=("clusters",))
    sensitivity = _technique(
        techniques, "sensitivity", "per-layer sensitivity to int8 or pruning", SENSITIVITY, None
    )
    sensitivity.add_argument("--no-plot", dest="no_plot", action="store_true", help="no FILE.png")
    sensitivity.add_argument(
        "--overwrite",
        action="store_true",
        help="replace FILE.json/.md/.png even if edgesmith did not write them",
    )
    add_settings(sensitivity, cc.SensitivityConfig)
    sensitivity.set_defaults(handler=cmd_sensitivity)
    quantize = _technique(
        techniques, "quantize", "int8 within an accuracy budget", QUANTIZE, cmd_quantize
    )
    add_settings(quantize, cc.AutotuneConfig, required=("max_accuracy_drop",))
    quantize.add_argument("--epochs", type=int, help="the QAT attempt's epochs (default: 2)")
    recipe = _technique(techniques, "recipe", "chain techniques from a recipe", RECIPE, cmd_recipe)
    recipe.add_argument("--recipe", required=True, metavar="FILE", help="YAML or JSON recipe")


def _technique(techniques, name: str, summary: str, text: tuple[str, str], handler):
    """A technique's parser with ``--from`` (not for distill) and the output flags."""
    parser = techniques.add_parser(
        name, formatter_class=formatter, help=summary, description=text[0], epilog=text[1]
    )
    if name != "distill":
        parser.add_argument(
            "--from", dest="source", required=True, metavar="DIR", help="Keras artifact directory"
        )
    if name == "sensitivity":
        add_output_flags(parser, out="JSON file to write", json_help="print the JSON on stdout")
    elif name == "recipe":
        add_output_flags(parser, out="new directory for the steps", config=False)
    else:
        add_output_flags(parser)
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def _settings(parser: argparse.ArgumentParser, cls: type, required: tuple[str, ...] = ()) -> None:
    """The technique's own flags, then its fine-tuning flags in their own group."""
    own = tuple(name for name in settings_of(cls) if name not in settings_of(cc.FinetuneConfig))
    add_settings(parser, cls, skip=tuple(settings_of(cc.FinetuneConfig)), required=required)
    group = parser.add_argument_group("fine-tuning")
    skip = ("teacher",) if cls is cc.DistillConfig else ()
    add_settings(group, cls, skip=(*own, *skip))


def _precheck(args: argparse.Namespace, config, *, role: str = "--from") -> None:
    """Everything checkable without TensorFlow: the source, the teacher, the data, the output."""
    from edgesmith.compress.source import read_keras_source
    from edgesmith.core.artifacts import check_output_dir
    from edgesmith.core.datasets import parse_spec

    check_output_dir(args.out)
    read_keras_source(args.source, role=role, allow_qat=role == "--teacher")
    if getattr(config, "data", None):
        parse_spec(config.data)
    teacher = getattr(config, "teacher", None)
    if teacher:
        read_keras_source(teacher, role="--teacher", allow_qat=True)


def _reporter(args: argparse.Namespace):
    from edgesmith.core.progress import stderr_reporter

    return stderr_reporter(args.quiet)


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


def cmd_prune(args: argparse.Namespace) -> int:
    """``edgesmith compress prune``."""
    config = prune_config(args)
    _precheck(args, config)
    from edgesmith.compress.pruning import prune

    return print_artifact(args, prune(args.source, config, args.out, report=_reporter(args)))


def cmd_qat(args: argparse.Namespace) -> int:
    """``edgesmith compress qat``."""
    config = config_from_args(cc.QatConfig, args)
    _precheck(args, config)
    from edgesmith.compress.quantization_aware import qat

    return print_artifact(args, qat(args.source, config, args.out, report=_reporter(args)))


def cmd_distill(args: argparse.Namespace) -> int:
    """``edgesmith compress distill``."""
    config = config_from_args(cc.DistillConfig, args)
    _precheck(args, config, role="--teacher")
    from edgesmith.compress.source import check_teacher_fits, read_keras_source
    from edgesmith.train import MODEL_NAMES

    teacher = read_keras_source(args.source, role="--teacher", allow_qat=True)
    if config.student not in MODEL_NAMES:
        student = read_keras_source(config.student, role="--student")
        check_teacher_fits(teacher.manifest, student.manifest, args.source)
    from edgesmith.compress.distillation import distill

    return print_artifact(args, distill(args.source, config, args.out, report=_reporter(args)))


def cmd_cluster(args: argparse.Namespace) -> int:
    """``edgesmith compress cluster``."""
    config = config_from_args(cc.ClusterConfig, args)
    _precheck(args, config)
    from edgesmith.compress.clustering import cluster

    return print_artifact(args, cluster(args.source, config, args.out, report=_reporter(args)))


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """``edgesmith compress sensitivity``."""
    from edgesmith.compress.source import read_keras_source
    from edgesmith.core.outputs import check_files_writable

    config = config_from_args(cc.SensitivityConfig, args)
    if not args.out.lower().endswith(".json"):
        raise EdgesmithError(f"--out must be a .json file. Received: {args.out}")
    out = Path(args.out)
    check_files_writable(
        [out, out.with_suffix(".md"), out.with_suffix(".png")], overwrite=args.overwrite
    )
    read_keras_source(args.source)
    from edgesmith.compress.sensitivity import PLOT_HINT, analyse_sensitivity, plots_available

    plot = not args.no_plot
    if plot and not plots_available():  # said up front, and even with --quiet
        print(f"edgesmith: note: plot skipped: {PLOT_HINT}", file=sys.stderr)
        plot = False
    document = analyse_sensitivity(
        args.source, config, args.out, report=_reporter(args), plot=plot, overwrite=args.overwrite
    )
    print(json.dumps(document, indent=2) if args.json else args.out)
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    """``edgesmith compress quantize``."""
    from edgesmith.core.errors import CheckFailed

    qat = {} if args.epochs is None else {"qat": {"epochs": args.epochs}}
    config = config_from_args(cc.AutotuneConfig, args, **qat)
    _precheck(args, config)
    from edgesmith.compress.autotune import SUMMARY, quantize_within_budget
    from edgesmith.core.outputs import OutputLock

    with OutputLock(args.out):  # a second run into the same --out exits 2 at once
        chosen = quantize_within_budget(args.source, config, args.out, report=_reporter(args))
    summary = json.loads((Path(args.out) / SUMMARY).read_text())
    print(json.dumps(summary, indent=2) if args.json else chosen.path)
    if not summary["met"]:
        raise CheckFailed(
            f"no attempt met --max-accuracy-drop {config.max_accuracy_drop}: the best, "
            f"{summary['chosen']}, dropped {min(a['drop_points'] for a in summary['attempts'])} "
            "points"
        )
    return 0


def cmd_recipe(args: argparse.Namespace) -> int:
    """``edgesmith compress recipe``."""
    from edgesmith.compress.recipes import SUMMARY, parse_recipe, run_recipe
    from edgesmith.compress.source import read_keras_source
    from edgesmith.core.artifacts import check_output_dir

    steps = parse_recipe(args.recipe)
    check_output_dir(args.out)
    read_keras_source(args.source, role="--from", allow_qat=False)
    for _, config in steps:
        if getattr(config, "teacher", None):
            read_keras_source(config.teacher, role="--teacher", allow_qat=True)
    artifacts = run_recipe(args.source, args.recipe, args.out, report=_reporter(args))
    if args.json:
        print((Path(args.out) / SUMMARY).read_text())
    else:
        for artifact in artifacts:
            print(artifact.path)
    return 0
