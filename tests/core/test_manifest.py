"""The manifest contract: typed records that write the JSON edgesmith has always written.

Design under test: ``Manifest.to_dict`` reproduces the old JSON key for key (and, for what the
writers produce, byte for byte with ``json.dumps(indent=2)``); ``Manifest.from_dict`` validates
every value and refuses unknown keys (top-level sections and keys inside records alike) with one
line naming the key.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from edgesmith.core import manifest as mf
from edgesmith.core.artifacts import read_artifact, validate_manifest
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import Manifest

FIXTURE = Path(__file__).parents[1] / "runtime" / "fixtures" / "artifact_tflite"
SHA = "ab" * 32
NORM = {"name": "unit", "scale": 1 / 255, "mean": [0.0], "std": [1.0]}


def _base(**sections) -> dict:
    """A manifest as the pre-record writers wrote it (core keys, then the sections)."""
    return {
        "schema_version": 1,
        "id": "cd" * 32,
        "parent": None,
        "stage": "train",
        "technique": "resnet8",
        "format": "keras",
        "model_file": "model.keras",
        "files": {"model.keras": SHA, "history.json": SHA},
        "config": {"epochs": 2, "augment": "none", "devices": ["/CPU:0"], "nested": {"a": [1]}},
        "input": {
            "shape": [8, 8, 1],
            "layout": "NHWC",
            "dtype": "float32",
            "normalization": NORM,
            "quantization": None,
        },
        "labels": ["0", "1"],
        "dataset": {
            "spec": "digits",
            "fingerprint": "ef" * 32,
            "num_train": 1438,
            "num_eval": 359,
            "input_shape": [8, 8, 1],
            "num_classes": 2,
        },
        "metrics": {
            "accuracy": 0.9,
            "num_eval": 359,
            "per_class_accuracy": {"0": 0.8, "1": 1.0},
            "params": 100,
            "macs": 2000,
            "train_seconds": 3.2,
            "wall_seconds_this_session": 4.0,
            "images_per_second": 900.5,
            "epochs": 2,
        },
        "tool_versions": {"python": "3.11.7", "edgesmith": "0.1.0"},
        "created": "2026-11-28T12:37:27+00:00",
        **sections,
    }


EPOCH = {"epoch": 1, "loss": 1.2, "train_accuracy": 0.5, "eval_accuracy": 0.6, "seconds": 1.5}
TRAINED = _base(
    output={"kind": "probabilities", "shape": [2]},
    input_pipeline={
        "augment_on": "host",
        "augment_device": "CPU",
        "prefetch_to_device": False,
        "prefetch_target": None,
        "fetch": "batches stay on the host",
    },
    history=[EPOCH, {**EPOCH, "epoch": 2}],
    trusted_model_code=False,
)
KERAS3 = _base(
    output={"kind": "logits", "shape": [2]},
    input_pipeline={"augment_on": "device", "feed": "uint8"},
    training={
        "keras": "3.8.0",
        "backend": "jax",
        "device_kind": "gpu",
        "devices": ["cuda:0"],
        "precision": "mixed_bfloat16",
        "data_parallel": False,
    },
    history=[EPOCH],
)
VELA = {
    "label": "Vela estimate",
    "note": "not measured on the NPU",
    "config": {
        "accelerator": "ethos-u55-128",
        "system_config": None,
        "memory_mode": None,
        "clock_mhz": 500,
    },
    "clock_mhz": 500.0,
    "npu_ops": 10,
    "cpu_ops": 0,
    "cpu_fallback": {},
    "npu_fraction": 1.0,
    "cycles": 12345,
    "inference_ms": 0.3,
    "sram_kb": 40.5,
    "flash_kb": 90.0,
    "dram_kb": 0.0,
    "vela_version": None,
    "file": "model_vela.tflite",
    "file_bytes": 9000,
    "c_array": {"source": "model_vela_data.cc", "header": "model_vela_data.h"},
}
OPS = {
    "format": "tflite",
    "operators": {"CONV_2D": 2, "SOFTMAX": 1},
    "op_dtypes": {"CONV_2D": ["int8", "int32"]},
    "tensor_dtypes": {"int8": 9, "int32": 2},
    "float_ops": [],
    "sparse_tensors": 0,
    "subgraphs": 1,
    "io": {"inputs": [{"name": "x", "dtype": "int8", "shape": [1, 8, 8, 1]}], "outputs": []},
    "num_float_ops": 0,
}
EXPORTED_METRICS = {
    "accuracy": 0.89,
    "source_accuracy_eval": 0.9,
    "num_eval": 359,
    "agreement": 0.98,
    "max_abs_diff": 0.1,
    "mean_abs_diff": 0.01,
    "parity": "pass",
    "tolerance": {"min_agreement": 0.5, "max_abs_diff": None, "compared": "probabilities"},
    "accuracy_test": {"method": "mcnemar", "verdict": "pass"},
    "parity_runner": "tflm",
    "size_bytes": 9000,
    "gzip_bytes": 7000,
    "macs": 2000,
    "params": 100,
    "source_accuracy": 0.9,
}


def _exported(target: dict) -> dict:
    document = _base(
        output={"kind": "probabilities", "shape": [2]},
        c_array={"source": "model_data.cc", "header": "model_data.h", "symbol": "g_model_data"},
        target=target,
        sparse={"encoded_tensors": 0, "xnnpack": True, "runtime": "dense"},
        raw_input_fold="affine",
        ops=OPS,
    )
    document.update(stage="export", technique="tflite-int8", format="tflite")
    document.update(model_file="model.tflite", files={"model.tflite": SHA}, parent="12" * 32)
    document["input"] = {
        "shape": [8, 8, 1],
        "layout": "NHWC",
        "dtype": "int8",
        "normalization": NORM,
        "raw_input": True,
        "quantization": {"scale": 1.0, "zero_point": -128},
    }
    document["metrics"] = EXPORTED_METRICS
    return document


TFLM_MEASURED = {
    "target": "tflm",
    "verdict": "pass",
    "flash_bytes": 9000,
    "arena_bytes": 5000,
    "arena_head_bytes": 4000,
    "arena_tail_bytes": None,
    "arena_source": "measured",
    "arena_note": "allocated by TFLM",
    "arena_bytes_former_estimate": 3500,
}
TFLM_ESTIMATE = {
    "target": "tflm",
    "verdict": "pass",
    "flash_bytes": 9000,
    "arena_bytes_estimate": 3500,
    "arena_source": "estimate",
    "arena_note": "estimated",
}
ETHOS = {"target": "ethos-u55-128", "verdict": "pass", "vela": VELA}


def _compressed(technique: str, metrics: dict, **sections) -> dict:
    document = _base(output={"kind": "probabilities", "shape": [2]}, history=[EPOCH], **sections)
    document.update(stage="compress", technique=technique, parent="12" * 32)
    document["metrics"] = {
        "accuracy": 0.88,
        "num_eval": 359,
        "per_class_accuracy": {"0": 0.8, "1": 0.96},
        "params": 100,
        "macs": 2000,
        "source_accuracy": 0.9,
        "accuracy_drop": 2.0,
        **metrics,
    }
    return document


SPARSITY = {"sparsity": 0.5, "sparsity_per_layer": {"conv": 0.5}, "kernel_weights": 96}
PRUNED = _compressed(
    "prune-2x4",
    {**SPARSITY, "sparsity_pruned_layers": 0.5, "pattern_2x4_per_layer": {"conv": True}},
    pruning={
        "structure": "2:4",
        "target_sparsity": 0.5,
        "sparsity_scope": "layer",
        "layer_target_sparsity": 0.5,
        "schedule": "polynomial",
        "steps": {"begin_step": 0, "end_step": 90, "frequency": 10, "total_steps": 100},
        "pruned_layers": ["conv"],
        "left_dense": {"stem_conv": "the first layer (see --prune-first-layer)"},
    },
)
PRUNED["metrics"]["pattern_2x4"] = True
CHANNELS = _compressed(
    "prune-channels",
    {
        "params_source": 200,
        "macs_source": 4000,
        "mac_reduction": 0.5,
        "param_reduction": 0.5,
        "channels": {"stem_conv": [16, 8]},
    },
    pruning={
        "structure": "channels",
        "channel_fraction": None,
        "ranking": "l1",
        "groups": {"stem_conv": {"producers": ["stem_conv"], "members": [], "consumers": []}},
        "kept_whole": {},
        "flattened": [],
        "widths": "stem_conv=8",
        "width_search": {
            "max_latency_ratio": 0.6,
            "latency_ratio": 0.58,
            "mac_ratio": 0.5,
            "param_ratio": None,
            "threads": None,
            "seconds": 12.5,
            "steps": [{"group": "stem_conv", "width": 8}],
        },
    },
)
QAT = _compressed(
    "qat",
    {**SPARSITY, "params_with_quantizers": 130, "sparsity_source": 0.5},
    qat=True,
    quantization={
        "scheme": "tfmot default 8-bit",
        "weights": "int8 symmetric",
        "activations": "int8 asymmetric",
        "float_layers": {"softmax": "no int8 kernel"},
    },
)
QAT["metrics"]["sparsity_drift_per_layer"] = {"conv": -0.001}
CLUSTERED = _compressed(
    "cluster",
    {"unique_values_per_layer": {"conv": 16}, "clusters": 16, **SPARSITY},
    clustering={"clustered_layers": ["conv"], "left_alone": {"stem_conv": "first layer"}},
)
DISTILLED = _compressed(
    "distill",
    {"teacher_accuracy": 0.95},
    distillation={
        "teacher": "34" * 32,
        "teacher_path": "runs/teacher",
        "student": "resnet8",
        "alpha": 0.3,
        "temperature": 4.0,
    },
)
MIXED = _base(output={"kind": "probabilities", "shape": [2]})
MIXED.update(stage="compress", technique="tflite-int8-mixed", format="tflite")
MIXED.update(model_file="model.tflite", files={"model.tflite": SHA})
MIXED["metrics"] = {
    "accuracy": 0.9,
    "num_eval": 200,
    "size_bytes": 9000,
    "gzip_bytes": 7000,
    "macs": 2000,
    "float_layers": ["conv"],
}
IMPORTED = _base(output={"kind": "logits", "shape": [2]}, trusted_model_code=True)

DOCUMENTS = {
    "trained": TRAINED,
    "keras3": KERAS3,
    "imported": IMPORTED,
    "exported-tflm-measured": _exported(TFLM_MEASURED),
    "exported-tflm-estimate": _exported(TFLM_ESTIMATE),
    "exported-ethos": _exported(ETHOS),
    "pruned-2x4": PRUNED,
    "channels-searched": CHANNELS,
    "qat": QAT,
    "clustered": CLUSTERED,
    "distilled": DISTILLED,
    "mixed": MIXED,
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_writers_json_reads_back_to_the_same_text(name):
    """What each stage wrote before the records existed reads and writes back byte for byte."""
    document = DOCUMENTS[name]
    text = json.dumps(document, indent=2)
    manifest = Manifest.from_dict(json.loads(text))
    assert manifest.to_dict() == document
    assert json.dumps(manifest.to_dict(), indent=2) == text


def test_the_committed_fixture_reads_back_to_its_own_file():
    text = (FIXTURE / "manifest.json").read_text()
    artifact = read_artifact(FIXTURE)
    assert json.dumps(artifact.manifest.to_dict(), indent=2) + "\n" == text
    assert artifact.manifest.input.normalization.name == "unit"
    assert artifact.manifest.metrics.macs == 23200 and artifact.manifest.output.kind == (
        "probabilities"
    )


def test_typed_sections_read_as_attributes():
    exported = Manifest.from_dict(_exported(ETHOS))
    assert exported.target.vela.config.accelerator == "ethos-u55-128"
    assert exported.target.vela.c_array.header == "model_vela_data.h"
    assert exported.input.quantization.zero_point == -128 and exported.input.raw_input is True
    assert exported.c_array.symbol == "g_model_data" and exported.ops.operators["CONV_2D"] == 2
    channels = Manifest.from_dict(CHANNELS).pruning
    assert isinstance(channels, mf.ChannelPruning) and channels.width_search.threads is None
    pruned = Manifest.from_dict(PRUNED).pruning
    assert isinstance(pruned, mf.Pruning) and pruned.steps.end_step == 90
    assert pruned.pruned_layers == ("conv",)
    keras3 = Manifest.from_dict(KERAS3)
    assert keras3.training.backend == "jax" and keras3.input_pipeline.prefetch_target is None
    assert Manifest.from_dict(QAT).qat is True
    assert Manifest.from_dict(DISTILLED).distillation.alpha == 0.3


def _written(write_artifact, tmp_path: Path, **sections):
    """A keras artifact with every input field and a few metrics, plus ``sections``."""
    input_spec = mf.InputRecord(
        shape=(8, 8, 1),
        layout="NHWC",
        dtype="float32",
        normalization=mf.Normalization(),
        quantization=None,
    )
    fields = dict(
        config={"epochs": 2},
        input_spec=input_spec,
        labels=["0", "1"],
        dataset=mf.DatasetRecord(spec="digits", num_train=2, num_eval=2),
        metrics=mf.Metrics(accuracy=0.5, num_eval=2, params=10, macs=100),
        tool_versions={"python": "3"},
    )
    return write_artifact(tmp_path / "a", {"model.keras": b"weights"}, **{**fields, **sections})


def test_a_written_artifact_reads_back_equal_and_its_file_is_to_dict(tmp_path, write_artifact):
    written = _written(
        write_artifact,
        tmp_path,
        output=mf.OutputRecord(kind="logits", shape=(2,)),
        input_pipeline=mf.InputPipeline(
            augment_on="host",
            augment_device="CPU",
            prefetch_to_device=False,
            fetch="batches stay on the host",
        ),
        history=[EPOCH],
        trusted_model_code=False,
    )
    text = (tmp_path / "a" / "manifest.json").read_text()
    read = read_artifact(tmp_path / "a")
    assert read.manifest == written.manifest
    assert json.dumps(read.manifest.to_dict(), indent=2) + "\n" == text
    document = json.loads(text)
    assert document["input"]["quantization"] is None  # a float input says so explicitly
    assert document["input_pipeline"]["prefetch_target"] is None  # written beside its flag
    assert list(document)[-4:] == ["output", "input_pipeline", "history", "trusted_model_code"]
    assert validate_manifest(document) == read.manifest


def test_a_trained_artifact_reads_back_to_its_own_json(digits_artifact):
    """The real trainer's manifest (a slow test: it uses the training fixture)."""
    document = json.loads((digits_artifact / "manifest.json").read_text())
    assert read_artifact(digits_artifact).manifest.to_dict() == document


def test_commit_refuses_a_section_its_reader_would_refuse(tmp_path, write_artifact):
    with pytest.raises(EdgesmithError, match=r"metrics\.accuracy must be a number"):
        _written(write_artifact, tmp_path, metrics=mf.Metrics(accuracy="high"))
    assert not (tmp_path / "a").exists()


def test_writer_records_refuse_unknown_keys_with_the_key_named():
    with pytest.raises(EdgesmithError, match=r"manifest: unknown key metrics\.acuracy"):
        mf.Metrics.from_dict({"acuracy": 0.5})
    with pytest.raises(EdgesmithError, match=r"unknown key target\.vela\.sram"):
        mf.Target.from_dict({**ETHOS, "vela": {**VELA, "sram": 1}})


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("metrics", "accuracy"), "high", "metrics.accuracy must be a number. Received: 'high'"),
        (("metrics", "num_eval"), -1, "metrics.num_eval must be a non-negative integer"),
        (("metrics", "parity"), "ok", "metrics.parity must be one of ('pass', 'fail')"),
        (("input", "shape"), [8, 0, 1], "input.shape must be a list of positive integers"),
        (("input", "normalization"), {"name": "unit"}, "input.normalization must be a"),
        (("input", "quantization"), {"scale": 1.0}, "input.quantization lacks required key"),
        # issue 23: nested records of the wrong type or with numbers no reader can use
        (("input", "normalization"), "unit", "input.normalization must be a normalization"),
        (("input", "normalization", "std"), [float("nan")], "input.normalization.std must be"),
        (("input", "normalization", "std"), [0.0], "finite numbers > 0"),
        (("input", "normalization", "mean"), [float("inf")], "input.normalization.mean must"),
        (("input", "normalization", "scale"), -1.0, "input.normalization.scale must be a fin"),
        (("input", "quantization"), [1, 2], "input.quantization must be an object"),
        (("input", "quantization"), {"scale": float("nan"), "zero_point": 0}, "scale must be a"),
        (("input", "quantization"), {"scale": 0.1, "zero_point": 2**40}, "int32 range"),
        (("input", "shape"), [10**9, 10**9, 3], "at most 268435456 elements"),
        (("output",), "logits", "output must be an object. Received: 'logits'"),
        (("metrics", "macs"), "1e9", "metrics.macs must be a non-negative integer"),
        (("output", "kind"), "scores", "output.kind must be one of"),
        (("dataset", "spec"), None, "dataset.spec must be a string. Received: None"),
        (("target", "vela", "npu_ops"), 1.5, "target.vela.npu_ops must be a non-negative"),
        (("target", "arena_source"), "guess", "target.arena_source must be one of"),
        (("sparse", "xnnpack"), "yes", "sparse.xnnpack must be true or false"),
        (("ops", "operators"), {"CONV_2D": "2"}, "ops.operators must be an object of counts"),
        (("tool_versions",), {"python": 3}, "tool_versions must be an object of version str"),
        (("stage",), "deploy", "stage must be one of ('train', 'compress', 'export')"),
        (("raw_input_fold",), 5, "raw_input_fold must be a string. Received: 5"),
        (("history",), [1], "history must be a list of objects. Received: 1"),
    ],
)
def test_bad_values_are_refused_naming_the_key(path, value, message):
    document = copy.deepcopy(_exported(ETHOS))
    document["history"] = [EPOCH]
    *parents, last = path
    holder = document
    for key in parents:
        holder = holder[key]
    holder[last] = value
    with pytest.raises(EdgesmithError) as caught:
        Manifest.from_dict(document, where="m.json")
    text = str(caught.value)
    assert text.startswith("m.json: ") and message in text and "\n" not in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": {}}, "unknown key extra"),
        ({"deployment": {"device": "x"}}, "unknown key deployment"),
        ({"metrics": {"accuracy": 0.5, "f1": 0.4}}, "unknown key metrics.f1"),
        ({"output": {"kind": "logits", "activation": "none"}}, "unknown key output.activation"),
    ],
)
def test_unknown_sections_and_keys_are_refused(change, message):
    """Design: no open bag. A key this edgesmith cannot type is refused, not dropped."""
    with pytest.raises(EdgesmithError, match=message):
        Manifest.from_dict({**TRAINED, **change})


def test_null_sections_read_as_absent():
    """An older autotune wrote ``"output": null`` for a source without one: read as absent."""
    manifest = Manifest.from_dict({**MIXED, "output": None})
    assert manifest.output is None and "output" not in manifest.to_dict()


def test_every_record_documents_its_fields():
    records = [
        value
        for value in vars(mf).values()
        if isinstance(value, type) and issubclass(value, mf._Record) and value is not mf._Record
    ]
    assert len(records) >= 20
    for record in records:
        assert record.__doc__ and dataclasses.is_dataclass(record)
        undocumented = [name for name, doc in mf.field_docs(record).items() if not doc]
        assert not undocumented, f"{record.__name__}: {undocumented}"
