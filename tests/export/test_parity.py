from pathlib import Path

import numpy as np
import pytest

from edgesmith.core.errors import CheckFailed, EdgesmithError
from edgesmith.core.progress import silent
from edgesmith.export.faults import negated_onnx, negated_tflite, requantized
from edgesmith.export.formats import FLOAT, QUANTIZED
from edgesmith.export.parity import (
    ParityCheck,
    accuracy_drop_test,
    binomial_sf,
    check_parity,
    compare,
)

QUIET = {"report": silent}


def test_compare_counts_agreement_and_differences():
    reference = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], np.float32)
    outputs = reference.copy()
    outputs[2] = [0.4, 0.6]  # one of four flips
    labels = np.array([0, 1, 0, 0])
    metrics = compare(outputs, reference, labels, QUANTIZED, "probabilities")
    assert metrics["agreement"] == 0.75 and metrics["accuracy"] == 0.5
    assert metrics["source_accuracy_eval"] == 0.75
    assert metrics["max_abs_diff"] == pytest.approx(0.2)
    assert metrics["mean_abs_diff"] == pytest.approx(0.4 / 8)
    # one image of four is no evidence of a drop beyond one point: the file is not failed
    assert metrics["parity"] == "pass" and metrics["accuracy_test"]["p_value"] > 0.05
    assert metrics["tolerance"]["max_accuracy_drop_points"] == 1.0
    outputs[:] = [0.4, 0.6]  # every image class 1: agreement 50%, at the catastrophic floor
    half = compare(outputs, reference, labels, QUANTIZED, "probabilities")
    assert half["agreement"] == 0.5 and half["parity"] == "pass"
    outputs[:] = [[0.6, 0.4], [0.6, 0.4], [0.4, 0.6], [0.6, 0.4]]  # 0, 0, 1, 0: 25% agree
    broken = compare(outputs, reference, labels, QUANTIZED, "probabilities")
    assert broken["parity"] == "fail" and broken["parity_failures"] == ["agreement 0.2500 < 0.5"]
    same = compare(reference + 5e-5, reference, labels, FLOAT, "logits")
    assert same["parity"] == "pass" and "accuracy_test" not in same
    off = compare(reference + 2e-4, reference, labels, FLOAT, "logits")
    assert off["parity"] == "fail" and off["parity_failures"][0].startswith("max abs diff")
    nan = compare(reference * np.nan, reference, labels, FLOAT, "logits")
    assert nan["parity"] == "fail"


def _paired(n: int, right_wrong: int, wrong_right: int, both_right: int):
    """Per-image correctness of a source and a file: b, c and concordant counts, rest wrong."""
    src = np.zeros(n, bool)
    out = np.zeros(n, bool)
    src[:right_wrong] = True
    out[right_wrong : right_wrong + wrong_right] = True
    both = slice(right_wrong + wrong_right, right_wrong + wrong_right + both_right)
    src[both] = out[both] = True
    return src, out


@pytest.mark.parametrize(
    ("n", "b", "c", "verdict"),
    [
        # MLCommons' int8 ResNet-8 against its float model on CIFAR-10's 10,000 test images:
        # 87.19% -> 86.97% (22 images), 97.5% agreement: a good file.
        (10_000, 120, 98, "pass"),
        (10_000, 150, 50, "pass"),  # exactly at the 1-point tolerance: no evidence beyond it
        (10_000, 250, 50, "fail"),  # 2 points below: beyond the tolerance, p tiny
        (200, 4, 1, "pass"),  # a small eval set: 1.5 points observed is not evidence
        (200, 30, 2, "fail"),  # a broken file loses 14 points: even 200 images show it
        (300, 0, 0, "pass"),
    ],
)
def test_accuracy_drop_test_decides_on_evidence(n, b, c, verdict):
    src, out = _paired(n, b, c, both_right=int(0.8 * n) - b - c)
    test = accuracy_drop_test(src, out, 1.0)
    assert test["verdict"] == verdict
    assert test["source_right_file_wrong"] == b and test["source_wrong_file_right"] == c
    assert test["drop_points"] == pytest.approx(100 * (b - c) / n)
    low, high = test["drop_interval_points"]
    assert low <= test["drop_points"] <= high
    assert (test["p_value"] < 0.05) == (verdict == "fail")


def test_accuracy_drop_p_values_match_mcnemar_and_scipy_free_binomial():
    # without a margin the test is McNemar's exact one-sided test: P(B >= b | d, 1/2)
    src, out = _paired(1000, 15, 5, 700)
    assert accuracy_drop_test(src, out, 0.0)["p_value"] == pytest.approx(0.020695, abs=1e-6)
    assert binomial_sf(15, 20, 0.5) == pytest.approx(21700 / 2**20)
    assert binomial_sf(0, 5, 0.3) == 1.0 and binomial_sf(6, 5, 0.3) == 0.0
    with pytest.raises(EdgesmithError, match="two equal, non-empty"):
        accuracy_drop_test(np.ones(3, bool), np.ones(4, bool))


def _corrupt_tflite(data: bytes) -> bytes:
    """Negate every float32 weight of the largest constant buffer: same file, wrong numbers."""
    from edgesmith.export.ops import read_tflite

    model = read_tflite(data)
    sizes = [len(b.data) if b.data is not None else 0 for b in model.buffers]
    buffer = model.buffers[int(np.argmax(sizes))]
    payload = bytes(np.asarray(buffer.data, np.uint8))
    start = data.find(payload)
    assert start > 0
    weights = np.frombuffer(payload, np.float32)
    return data[:start] + (-weights).astype(np.float32).tobytes() + data[start + len(payload) :]


def test_corrupted_file_fails_parity(exported_all, digits_artifact, tmp_path):
    from edgesmith.core.datasets import load_dataset

    artifact = exported_all["tflite-fp32"].artifact
    bad = tmp_path / "model.tflite"
    bad.write_bytes(_corrupt_tflite(artifact.model_path.read_bytes()))
    good = artifact.model_path
    data = load_dataset("digits")
    from edgesmith import runtime

    with runtime.load(good) as model:
        reference = model.predict(data.x_eval)
    float_check = ParityCheck(FLOAT, "probabilities")
    ok, _ = check_parity(good, data.x_eval, data.y_eval, reference, float_check)
    assert ok["parity"] == "pass" and ok["max_abs_diff"] == 0.0
    broken, outputs = check_parity(bad, data.x_eval, data.y_eval, reference, float_check)
    assert broken["parity"] == "fail" and outputs.shape == reference.shape
    assert float(abs(outputs - reference).max()) == pytest.approx(broken["max_abs_diff"], rel=1e-6)
    assert broken["max_abs_diff"] > 1e-2 and broken["agreement"] < 0.99


@pytest.fixture
def corrupting_builder(monkeypatch):
    from edgesmith.export import builders

    original = builders.BUILDERS["tflite-fp32"]
    monkeypatch.setitem(
        builders.BUILDERS, "tflite-fp32", lambda plan: _corrupt_tflite(original(plan))
    )


def test_export_refuses_to_publish_a_mismatching_file(
    digits_artifact, tmp_path, corrupting_builder
):
    from edgesmith.export import export

    out = tmp_path / "out"
    with pytest.raises(CheckFailed, match="tflite-fp32 fails its parity check") as info:
        export(digits_artifact, "tflite-fp32,onnx", out, max_eval=100, **QUIET)
    assert info.value.exit_code == 1
    results = {r.name: r for r in info.value.results}
    assert results["tflite-fp32"].artifact is None
    assert results["tflite-fp32"].metrics.parity == "fail"
    assert results["onnx"].artifact is not None  # the good one is still published
    assert sorted(p.name for p in out.iterdir()) == ["onnx"]  # no partial dirs


def test_allow_mismatch_publishes_and_records_fail(digits_artifact, tmp_path, corrupting_builder):
    from edgesmith.export import export

    (artifact,) = export(
        digits_artifact, "tflite-fp32", tmp_path / "o", allow_mismatch=True, max_eval=100, **QUIET
    )
    metrics = artifact.metrics
    assert metrics.parity == "fail" and metrics.parity_failures


@pytest.fixture(scope="module")
def digits_reference(exported_all):
    from edgesmith import runtime
    from edgesmith.core.datasets import load_dataset

    data = load_dataset("digits")
    with runtime.load(exported_all["tflite-fp32"].artifact.model_path) as model:
        return data, model.predict(data.x_eval)


@pytest.mark.parametrize("name", ["tflite-int8", "onnx-int8"])
def test_int8_files_pass_and_broken_ones_fail_on_accuracy(
    exported_all, digits_reference, tmp_path, name
):
    """Deterministic: the outputs are fixed, and the verdict is a function of them."""
    from edgesmith import runtime

    data, reference = digits_reference
    path = exported_all[name].artifact.model_path

    def verdict(outputs):
        return compare(outputs, reference, data.y_eval, QUANTIZED, "probabilities")

    with runtime.load(path) as model:
        good = verdict(model.predict(data.x_eval))
        broken = {}
        if name == "tflite-int8":  # the int8 input tensor carries a scale and a zero point
            broken["input scale x4"] = model.run(requantized(model, data.x_eval, 4.0))
            broken["zero point +128"] = model.run(requantized(model, data.x_eval, 1.0, 128))
    assert good["parity"] == "pass", good
    with runtime.load(path, normalization="raw") as model:  # 0..255 where 0..1 was trained
        broken["raw pixels"] = model.predict(data.x_eval)
    corrupt = tmp_path / path.name
    negate = negated_tflite if name == "tflite-int8" else negated_onnx
    corrupt.write_bytes(negate(path.read_bytes()))
    with runtime.load(corrupt) as model:
        broken["one weight tensor negated"] = model.predict(data.x_eval)
    for case, outputs in broken.items():
        result = verdict(outputs)
        assert result["parity"] == "fail", (case, result)
        assert result["accuracy_test"]["p_value"] < 1e-3 or result["agreement"] < 0.5, case


MLPERF = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.skipif(
    not (MLPERF / "mlperf" / "pretrainedResnet_quant.tflite").is_file()
    or not (MLPERF / "cifar10.npz").is_file(),
    reason="MLCommons' ResNet-8 files and cifar10.npz are not at hand (../shared/data)",
)
@pytest.mark.slow
def test_mlcommons_int8_resnet8_passes_and_its_broken_copies_fail(tmp_path):
    """MLCommons' published int8 ResNet-8 against its own float model, 2,000 CIFAR-10 images."""
    from edgesmith import runtime

    with np.load(MLPERF / "cifar10.npz") as npz:
        pixels, labels = npz["x_test"][:2000], npz["y_test"][:2000].astype(np.int64)
    folder = MLPERF / "mlperf"
    with runtime.load(folder / "pretrainedResnet.tflite", normalization="raw") as model:
        reference = model.predict(pixels)

    def verdict(outputs):
        return compare(outputs, reference, labels, QUANTIZED, "probabilities")

    quant = folder / "pretrainedResnet_quant.tflite"
    with runtime.load(quant, normalization="raw") as model:
        good = verdict(model.predict(pixels))
        scale = verdict(model.run(requantized(model, pixels, 4.0)))
        zero_point = verdict(model.run(requantized(model, pixels, 1.0, 128)))
    with runtime.load(quant, normalization="unit") as model:
        normalisation = verdict(model.predict(pixels))
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(negated_tflite(quant.read_bytes()))
    with runtime.load(corrupt, normalization="raw") as model:
        weights = verdict(model.predict(pixels))
    assert good["parity"] == "pass" and 0.96 < good["agreement"] < 0.99
    assert abs(good["accuracy"] - good["source_accuracy_eval"]) < 0.01
    for broken in (scale, zero_point, normalisation, weights):
        assert broken["parity"] == "fail" and broken["accuracy_test"]["p_value"] < 1e-3
