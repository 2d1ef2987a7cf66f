"""The ``edgesmith compress`` sub-commands: parse, build a config, call the technique, print.

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
from typing import Any

from edgesmith.core.cli_args import formatter, print_artifact
from edgesmith.tfkeras.model_safety import trusting_handler

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
    _register_prune(techniques)
    _register_qat(techniques)
    _register_distill(techniques)
    _register_cluster(techniques)
    _register_sensitivity(techniques)
    _register_quantize(techniques)
    _register_recipe(techniques)


def _common(parser: argparse.ArgumentParser, *, source: bool = True) -> None:
    if source:
        parser.add_argument(
            "--from", dest="source", required=True, metavar="DIR", help="Keras artifact directory"
        )
    parser.add_argument("--out", required=True, metavar="DIR", help="new artifact directory")
    parser.add_argument(
        "--config", metavar="FILE", help="YAML/JSON file of these settings; flags override it"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--json", action="store_true", help="print the written manifest as JSON on stdout"
    )
    _trust_flag(parser)


def _trust_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-model",
        dest="trust_model",
        action="store_true",
        help="load model files that run code when loaded (Lambda layers, custom classes, "
        "SavedModel) in --from/--teacher/--student; refused by default, see SECURITY.md",
    )


def _finetune_flags(parser: argparse.ArgumentParser, *, teacher: bool = True) -> None:
    group = parser.add_argument_group("fine-tuning")
    group.add_argument("--epochs", type=int, help="fine-tuning passes over the training data")
    group.add_argument("--batch-size", type=int, dest="batch_size", help="default: 128")
    group.add_argument("--optimizer", choices=("sgd", "adam"), help="default: sgd (Nesterov)")
    group.add_argument("--lr", type=float, dest="learning_rate", help="peak learning rate")
    group.add_argument(
        "--weight-decay",
        type=float,
        dest="weight_decay",
        help="decoupled weight decay per unit learning rate, BatchNorm and biases excluded "
        "(default 0.0025, as in training)",
    )
    group.add_argument("--data", help="data spec (default: the source artifact's)")
    group.add_argument("--seed", type=int, help="default: 0")
    if teacher:
        group.add_argument(
            "--teacher", metavar="DIR", help="distil from this artifact while fine-tuning"
        )
        group.add_argument("--alpha", type=float, help="hard-label weight with --teacher (0.5)")
        group.add_argument("--temperature", type=float, help="distillation temperature (4)")


FINETUNE_KEYS = (
    "epochs",
    "batch_size",
    "optimizer",
    "learning_rate",
    "weight_decay",
    "data",
    "seed",
    "teacher",
    "alpha",
    "temperature",
)


def _register_prune(techniques) -> None:
    parser = techniques.add_parser(
        "prune",
        formatter_class=formatter,
        help="magnitude, 2:4 or channel pruning with fine-tuning",
        description="Prune while fine-tuning. unstructured: zero the smallest weights (tfmot),\n"
        "saved stripped; the file shrinks only gzipped. 2:4: two zeros in every four input\n"
        "channels. channels: remove whole filters and rebuild thinner layers, consistently\n"
        "across residual adds: fewer params, fewer MACs, a smaller file and lower latency.",
        epilog="examples:\n"
        "  edgesmith compress prune --from runs/r8 --sparsity 0.75 --epochs 8 --out runs/p75\n"
        "  edgesmith compress prune --from runs/r8 --structure 2:4 --epochs 6 --out runs/p24\n"
        "  edgesmith compress prune --from runs/r8 --structure channels --sparsity 0.3 "
        "--out runs/c30\n"
        "  edgesmith compress prune --from runs/r8 --structure channels --mac-reduction 0.5 "
        "--ranking bn --epochs 10 --out runs/c50\n"
        "  edgesmith compress prune --from runs/r8 --structure channels --mac-reduction 0.6 "
        "--round-to 8 \\\n      --teacher runs/r8 --epochs 30 --out runs/c60   # distil from "
        "the dense model\n"
        "  edgesmith compress prune --from runs/r8 --structure channels --max-latency-ratio 0.65 "
        "\\\n      --mac-reduction 0.5 --param-reduction 0.55 --round-to 8 --epochs 30 "
        "--out runs/fast   # widths timed here\n"
        "  edgesmith compress prune --from runs/r8 --structure channels \\\n      --widths "
        "stem_conv=16,stage1_block1_conv1=8,stage2_block1_conv1=16 --epochs 30 --out runs/w\n\n"
        "The sparsity target holds over the whole model's conv/dense kernels (--sparsity-scope\n"
        "layers: in each pruned layer); the first conv and layers with fewer than --min-weights\n"
        "weights stay dense. The manifest records the sparsity measured from the saved\n"
        "weights, per layer and overall.",
    )
    _common(parser)
    parser.add_argument(
        "--sparsity",
        type=float,
        help="fraction of weights (unstructured) or channels (channels) to remove, in [0, 1)",
    )
    parser.add_argument(
        "--structure", choices=("unstructured", "2:4", "channels"), help="default: unstructured"
    )
    parser.add_argument("--schedule", choices=("polynomial", "constant"), help="polynomial")
    parser.add_argument(
        "--sparsity-scope",
        dest="sparsity_scope",
        choices=("model", "layers"),
        help="model: the target holds over all kernels (default); layers: per pruned layer",
    )
    parser.add_argument(
        "--skip-layers", dest="skip_layers", metavar="A,B", help="layer names to leave dense"
    )
    parser.add_argument(
        "--prune-first-layer", dest="prune_first_layer", action="store_true", default=None
    )
    parser.add_argument("--min-weights", dest="min_weights", type=int, help="default: 1024")
    parser.add_argument(
        "--ranking", choices=("l1", "l2", "bn"), help="channels: filter importance (l1)"
    )
    parser.add_argument(
        "--mac-reduction",
        dest="mac_reduction",
        type=float,
        help="channels: remove channels until MACs drop by this fraction",
    )
    parser.add_argument(
        "--round-to",
        dest="round_to",
        type=int,
        help="channels: keep a multiple of N channels per group (default 1); 8 suits "
        "XNNPACK's int8 kernels (measured on x86: 11 channels cost what 16 do)",
    )
    parser.add_argument(
        "--widths",
        metavar="LAYER=N,...",
        help="channels: exact channel counts (not rounded) for the groups these layers "
        "produce; the others follow --sparsity/--mac-reduction, or stay whole. A wrong name "
        "lists the groups",
    )
    parser.add_argument(
        "--max-latency-ratio",
        dest="max_latency_ratio",
        type=float,
        metavar="R",
        help="channels: search the widths by timing int8 .tflite candidates on this machine "
        "until the model runs in <= R x the source's time (batch 1), R in [0.01, 1]; with "
        "--mac-reduction, that holds too; not with --sparsity/--widths. Seconds per step for "
        "small CNNs; run it on the target device",
    )
    parser.add_argument(
        "--param-reduction",
        dest="param_reduction",
        type=float,
        metavar="P",
        help="channels, with --max-latency-ratio: the search also removes at least this "
        "fraction of the parameters (most of an int8 file; ~0.55 for a file ~half the size)",
    )
    parser.add_argument(
        "--latency-threads",
        dest="latency_threads",
        type=int,
        metavar="N",
        help="runtime threads while the width search times candidates (default 1)",
    )
    _finetune_flags(parser)
    parser.set_defaults(handler=trusting_handler(cmd_prune))


def _values(args: argparse.Namespace, keys: tuple[str, ...]) -> dict[str, Any]:
    from edgesmith.core.config import load_config_file

    values = load_config_file(args.config) if getattr(args, "config", None) else {}
    for key in keys:
        value = getattr(args, key, None)
        if value is not None:
            values[key] = value
    if isinstance(values.get("skip_layers"), str):
        values["skip_layers"] = [v.strip() for v in values["skip_layers"].split(",") if v.strip()]
    return values


def _precheck(args: argparse.Namespace, config, *, role: str = "--from") -> None:
    """Everything checkable without TensorFlow: the source, the teacher, the data, the output."""
    from edgesmith.compress.source import read_keras_source
    from edgesmith.core.artifacts import check_output_dir
    from edgesmith.core.datasets import parse_spec

    check_output_dir(args.out)
    if getattr(args, "source", None):
        read_keras_source(args.source, role=role, allow_qat=role == "--teacher")
    if getattr(config, "data", None):
        parse_spec(config.data)
    teacher = getattr(config, "teacher", None)
    if teacher:
        read_keras_source(teacher, role="--teacher", allow_qat=True)


def _reporter(args: argparse.Namespace):
    from edgesmith.core.progress import stderr_reporter

    return stderr_reporter(args.quiet)


def cmd_prune(args: argparse.Namespace) -> int:
    """``edgesmith compress prune``."""
    from edgesmith.compress.config import PruneConfig

    keys = (
        "sparsity",
        "structure",
        "sparsity_scope",
        "schedule",
        "skip_layers",
        "prune_first_layer",
        "min_weights",
        "ranking",
        "mac_reduction",
        "round_to",
        "widths",
        "max_latency_ratio",
        "param_reduction",
        "latency_threads",
        *FINETUNE_KEYS,
    )
    config = PruneConfig.from_dict(_values(args, keys))
    _precheck(args, config)
    from edgesmith.compress.pruning import prune

    return print_artifact(args, prune(args.source, config, args.out, report=_reporter(args)))


def _register_qat(techniques) -> None:
    parser = techniques.add_parser(
        "qat",
        formatter_class=formatter,
        help="quantization-aware training (int8, per-channel conv weights)",
        description="Fine-tune with int8 fake quantisation (tfmot). Layers tfmot has no int8\n"
        "rule for stay float and are named; a model tfmot cannot wrap at all is refused,\n"
        'naming the layer. The artifact is model.h5 with "qat": true in its manifest: export\n'
        "it to tflite-int8 to get the integer file (and measure its accuracy there).",
        epilog="examples:\n"
        "  edgesmith compress qat --from runs/r8 --epochs 3 --out runs/r8-qat\n"
        "  edgesmith compress qat --from runs/r8-p75 --preserve-sparsity --out runs/p75-qat\n"
        "  edgesmith compress qat --from runs/net --skip-layers head --out runs/net-qat\n"
        "  edgesmith export --from runs/r8-qat --format tflite-int8 --out runs/r8-qat-int8",
    )
    _common(parser)
    parser.add_argument(
        "--preserve-sparsity",
        dest="preserve_sparsity",
        action="store_true",
        default=None,
        help="keep a pruned source's zeros zero (tfmot's pruning-preserving QAT)",
    )
    parser.add_argument(
        "--skip-layers", dest="skip_layers", metavar="A,B", help="layer names to keep float"
    )
    _finetune_flags(parser)
    parser.set_defaults(handler=trusting_handler(cmd_qat))


def cmd_qat(args: argparse.Namespace) -> int:
    """``edgesmith compress qat``."""
    from edgesmith.compress.config import QatConfig

    config = QatConfig.from_dict(
        _values(args, ("preserve_sparsity", "skip_layers", *FINETUNE_KEYS))
    )
    _precheck(args, config)
    from edgesmith.compress.quantization_aware import qat

    return print_artifact(args, qat(args.source, config, args.out, report=_reporter(args)))


def _register_distill(techniques) -> None:
    parser = techniques.add_parser(
        "distill",
        formatter_class=formatter,
        help="train a student under a teacher's soft labels",
        description="Knowledge distillation: loss = alpha * CE(labels, student)\n"
        "  + (1 - alpha) * T^2 * KL(softmax(teacher/T) || softmax(student/T)).\n"
        "A zoo student is trained from scratch on the teacher's data and normalisation; an\n"
        "artifact student is fine-tuned (same classes and input shape as the teacher).\n"
        "Other techniques distil too: prune/qat/cluster take --teacher.",
        epilog="examples:\n"
        "  edgesmith compress distill --teacher runs/r20 --student resnet8 --epochs 30 "
        "--out runs/kd\n"
        "  edgesmith compress distill --teacher runs/r8 --student runs/r8-c50 --epochs 5 "
        "--alpha 0.3 --out runs/c50-kd\n"
        "  edgesmith compress prune --from runs/r8 --sparsity 0.8 --teacher runs/r8 "
        "--out runs/p80-kd",
    )
    parser.add_argument(
        "--teacher", dest="source", required=True, metavar="DIR", help="teacher Keras artifact"
    )
    parser.add_argument(
        "--student", required=True, metavar="NAME|DIR", help="zoo model name or artifact"
    )
    parser.add_argument("--alpha", type=float, help="hard-label weight in [0, 1] (default 0.5)")
    parser.add_argument("--temperature", type=float, help="softening temperature (default 4)")
    parser.add_argument("--warmup-epochs", type=float, dest="warmup_epochs", help="default 1")
    _common(parser, source=False)
    _finetune_flags(parser, teacher=False)
    parser.set_defaults(handler=trusting_handler(cmd_distill))


def cmd_distill(args: argparse.Namespace) -> int:
    """``edgesmith compress distill``."""
    from edgesmith.compress.config import DistillConfig

    keys = ("student", "alpha", "temperature", "warmup_epochs", *FINETUNE_KEYS)
    config = DistillConfig.from_dict(_values(args, keys))
    _precheck(args, config, role="--teacher")
    from edgesmith.compress.source import check_teacher_fits, read_keras_source
    from edgesmith.train import MODEL_NAMES

    teacher = read_keras_source(args.source, role="--teacher", allow_qat=True)
    if config.student not in MODEL_NAMES:
        student = read_keras_source(config.student, role="--student")
        check_teacher_fits(teacher.manifest, student.manifest, args.source)
    from edgesmith.compress.distillation import distill

    return print_artifact(args, distill(args.source, config, args.out, report=_reporter(args)))


def _register_cluster(techniques) -> None:
    parser = techniques.add_parser(
        "cluster",
        formatter_class=formatter,
        help="weight clustering: K shared values per layer (tfmot)",
        description="Cluster each layer's weights into K shared values while fine-tuning;\n"
        "saved stripped. The manifest records the distinct values measured per layer.",
        epilog="examples:\n"
        "  edgesmith compress cluster --from runs/r8 --clusters 16 --out runs/r8-k16\n"
        "  edgesmith compress cluster --from runs/r8-p75 --clusters 8 --preserve-sparsity "
        "--out runs/p75-k8",
    )
    _common(parser)
    parser.add_argument("--clusters", type=int, required=True, help="values per layer (>= 2)")
    parser.add_argument(
        "--init",
        choices=("kmeans_plus_plus", "linear", "density", "random"),
        help="centroid initialisation (default: kmeans_plus_plus)",
    )
    parser.add_argument(
        "--preserve-sparsity",
        dest="preserve_sparsity",
        action="store_true",
        default=None,
        help="keep a pruned source's zeros zero (tfmot's sparsity-preserving clustering): "
        "the file then gzips smaller than the pruned one alone",
    )
    parser.add_argument(
        "--skip-layers", dest="skip_layers", metavar="A,B", help="layer names to leave alone"
    )
    _finetune_flags(parser)
    parser.set_defaults(handler=trusting_handler(cmd_cluster))


def cmd_cluster(args: argparse.Namespace) -> int:
    """``edgesmith compress cluster``."""
    from edgesmith.compress.config import ClusterConfig

    keys = ("clusters", "init", "preserve_sparsity", "skip_layers", *FINETUNE_KEYS)
    config = ClusterConfig.from_dict(_values(args, keys))
    _precheck(args, config)
    from edgesmith.compress.clustering import cluster

    return print_artifact(args, cluster(args.source, config, args.out, report=_reporter(args)))


def _register_sensitivity(techniques) -> None:
    parser = techniques.add_parser(
        "sensitivity",
        formatter_class=formatter,
        help="per-layer sensitivity to int8 or pruning, as JSON and a table",
        description="int8: convert to int8 with the TFLite converter, report each op's error\n"
        "(RMSE / scale) and the exported file's accuracy with each conv/dense op alone left\n"
        "float. prune: prune each layer alone to each sparsity (no fine-tuning) and measure.\n"
        "Writes FILE.json, FILE.md (the table, also printed) and FILE.png (the plot; needs\n"
        'matplotlib: pip install "edgesmith[plots]").',
        epilog="examples:\n"
        "  edgesmith compress sensitivity --from runs/r8 --out r8-int8.json\n"
        "  edgesmith compress sensitivity --from runs/r8 --mode prune --sparsities 0.5,0.8,0.9 "
        "--out r8-prune.json",
    )
    parser.add_argument(
        "--from", dest="source", required=True, metavar="DIR", help="Keras artifact directory"
    )
    parser.add_argument("--out", required=True, metavar="FILE.json", help="JSON file to write")
    parser.add_argument("--mode", choices=("int8", "prune"), help="default: int8")
    parser.add_argument("--sparsities", metavar="A,B", help="prune sweep (0.5,0.75,0.9)")
    parser.add_argument("--max-eval", dest="max_eval", type=int, help="eval images (2000)")
    parser.add_argument(
        "--calibration-samples", dest="calibration_samples", type=int, help="default: 500"
    )
    parser.add_argument("--data", help="data spec (default: the source artifact's)")
    parser.add_argument("--config", metavar="FILE", help="YAML/JSON settings; flags override")
    parser.add_argument("--no-plot", dest="no_plot", action="store_true", help="no FILE.png")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace FILE.json/.md/.png even if edgesmith did not write them "
        "(by default such files are refused, exit 2)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--json", action="store_true", help="print the JSON on stdout")
    _trust_flag(parser)
    parser.set_defaults(handler=trusting_handler(cmd_sensitivity))


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """``edgesmith compress sensitivity``."""
    from edgesmith.compress.config import SensitivityConfig
    from edgesmith.compress.source import read_keras_source
    from edgesmith.core.errors import EdgesmithError
    from edgesmith.core.outputs import check_files_writable

    values = _values(args, ("mode", "max_eval", "calibration_samples", "data"))
    if args.sparsities:
        try:
            values["sparsities"] = [float(v) for v in args.sparsities.split(",")]
        except ValueError:
            raise EdgesmithError(
                f"--sparsities must be numbers separated by commas. Received: {args.sparsities!r}"
            ) from None
    config = SensitivityConfig.from_dict(values)
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


def _register_quantize(techniques) -> None:
    parser = techniques.add_parser(
        "quantize",
        formatter_class=formatter,
        help="int8 within an accuracy budget: PTQ, then QAT, then float fallbacks",
        description="Quantise to int8 with the cheapest method whose exported .tflite stays\n"
        "within --max-accuracy-drop points of the float model: post-training int8 first,\n"
        "then QAT, then post-training int8 with the most sensitive ops left float (one more\n"
        "per attempt). Every attempt is measured on the exported file, kept under OUT, and\n"
        "reported; OUT/autotune.json records them. Exit 1 when no attempt met the budget.",
        epilog="examples:\n"
        "  edgesmith compress quantize --from runs/r8 --max-accuracy-drop 0.5 --out runs/r8-q\n"
        "  edgesmith compress quantize --from runs/r8 --max-accuracy-drop 1 --attempts ptq,float "
        "--max-float-layers 2 --out runs/r8-q",
    )
    _common(parser)
    parser.add_argument(
        "--max-accuracy-drop",
        dest="max_accuracy_drop",
        type=float,
        required=True,
        help="allowed drop in accuracy points (0.5 = half a point)",
    )
    parser.add_argument("--attempts", help="ptq,qat,float (default: all, in that order)")
    parser.add_argument("--max-float-layers", dest="max_float_layers", type=int, help="3")
    parser.add_argument(
        "--calibration-samples", dest="calibration_samples", type=int, help="default: 500"
    )
    parser.add_argument("--max-eval", dest="max_eval", type=int, help="eval images (all)")
    parser.add_argument("--data", help="data spec (default: the source artifact's)")
    parser.add_argument("--epochs", type=int, help="QAT attempt's epochs (default 2)")
    parser.set_defaults(handler=trusting_handler(cmd_quantize))


def cmd_quantize(args: argparse.Namespace) -> int:
    """``edgesmith compress quantize``."""
    from edgesmith.compress.config import AutotuneConfig
    from edgesmith.core.errors import CheckFailed

    values = _values(
        args,
        (
            "max_accuracy_drop",
            "attempts",
            "max_float_layers",
            "calibration_samples",
            "max_eval",
            "data",
        ),
    )
    if args.epochs is not None:
        values.setdefault("qat", {})["epochs"] = args.epochs
    config = AutotuneConfig.from_dict(values)
    _precheck(args, config)
    from edgesmith.compress.autotune import SUMMARY, quantize_within_budget
    from edgesmith.core.outputs import OutputLock

    with OutputLock(args.out):  # a second run into the same --out exits 2 at once
        chosen = quantize_within_budget(args.source, config, args.out, report=_reporter(args))
    summary = json.loads((Path(args.out) / SUMMARY).read_text())
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(chosen.path)
    if not summary["met"]:
        raise CheckFailed(
            f"no attempt met --max-accuracy-drop {config.max_accuracy_drop}: the best, "
            f"{summary['chosen']}, dropped {min(a['drop_points'] for a in summary['attempts'])} "
            "points"
        )
    return 0


def _register_recipe(techniques) -> None:
    parser = techniques.add_parser(
        "recipe",
        formatter_class=formatter,
        help="chain techniques from a YAML/JSON recipe, one artifact per step",
        description="Run the recipe's steps in order, each from the previous step's artifact,\n"
        "each writing OUT/<n>-<technique>/. The whole recipe is validated first.",
        epilog="examples:\n"
        "  edgesmith compress recipe --from runs/r20 --recipe kd-prune-qat.yaml --out runs/chain\n"
        "\nrecipe file:\n"
        "  steps:\n"
        "    - distill: {student: resnet8, epochs: 30}\n"
        "    - prune: {sparsity: 0.5, structure: channels, epochs: 6}\n"
        "    - qat: {epochs: 2}\n"
        "\ntechniques: prune, qat, distill, cluster, quantize (their flags' names, with _)",
    )
    parser.add_argument(
        "--from", dest="source", required=True, metavar="DIR", help="Keras artifact directory"
    )
    parser.add_argument("--recipe", required=True, metavar="FILE", help="YAML or JSON recipe")
    parser.add_argument("--out", required=True, metavar="DIR", help="new directory for the steps")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--json", action="store_true", help="print the steps' record as JSON")
    _trust_flag(parser)
    parser.set_defaults(handler=trusting_handler(cmd_recipe))


def cmd_recipe(args: argparse.Namespace) -> int:
    """``edgesmith compress recipe``."""
    from edgesmith.compress.recipes import SUMMARY, parse_recipe
    from edgesmith.compress.source import read_keras_source
    from edgesmith.core.artifacts import check_output_dir

    steps = parse_recipe(args.recipe)
    check_output_dir(args.out)
    read_keras_source(args.source, role="--from", allow_qat=False)
    for _, config in steps:
        teacher = getattr(config, "teacher", None)
        if teacher:
            read_keras_source(teacher, role="--teacher", allow_qat=True)
    from edgesmith.compress.recipes import run_recipe

    artifacts = run_recipe(args.source, args.recipe, args.out, report=_reporter(args))
    if args.json:
        print((Path(args.out) / SUMMARY).read_text())
    else:
        for artifact in artifacts:
            print(artifact.path)
    return 0
