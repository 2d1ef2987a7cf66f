import numpy as np
import pytest

from edgesmith.errors import CheckFailed
from edgesmith.export.formats import FLOAT, QUANTIZED
from edgesmith.export.parity import check_parity, compare

QUIET = {"report": lambda line: None}


def test_compare_counts_agreement_and_differences():
    reference = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], np.float32)
    outputs = reference.copy()
    outputs[2] = [0.4, 0.6]  # one of four flips
    labels = np.array([0, 1, 0, 0])
    metrics = compare(outputs, reference, labels, QUANTIZED, "probabilities")
    assert metrics["agreement"] == 0.75 and metrics["accuracy"] == 0.5
    assert metrics["max_abs_diff"] == pytest.approx(0.2)
    assert metrics["mean_abs_diff"] == pytest.approx(0.4 / 8)
    assert metrics["parity"] == "fail"
    assert metrics["parity_failures"] == ["agreement 0.7500 < 0.98"]
    same = compare(reference + 5e-5, reference, labels, FLOAT, "logits")
    assert same["parity"] == "pass"
    off = compare(reference + 2e-4, reference, labels, FLOAT, "logits")
    assert off["parity"] == "fail" and off["parity_failures"][0].startswith("max abs diff")
    nan = compare(reference * np.nan, reference, labels, FLOAT, "logits")
    assert nan["parity"] == "fail"


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
    from edgesmith.datasets import load_dataset

    artifact = exported_all["tflite-fp32"].artifact
    bad = tmp_path / "model.tflite"
    bad.write_bytes(_corrupt_tflite(artifact.model_path.read_bytes()))
    good = artifact.model_path
    data = load_dataset("digits")
    from edgesmith import runtime

    with runtime.load(good) as model:
        reference = model.predict(data.x_eval)
    ok = check_parity(good, data.x_eval, data.y_eval, reference, FLOAT, "probabilities")
    assert ok["parity"] == "pass" and ok["max_abs_diff"] == 0.0
    broken = check_parity(bad, data.x_eval, data.y_eval, reference, FLOAT, "probabilities")
    assert broken["parity"] == "fail"
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
    assert results["tflite-fp32"].metrics["parity"] == "fail"
    assert results["onnx"].artifact is not None  # the good one is still published
    assert sorted(p.name for p in out.iterdir()) == ["onnx"]  # no partial dirs


def test_allow_mismatch_publishes_and_records_fail(digits_artifact, tmp_path, corrupting_builder):
    from edgesmith.export import export

    (artifact,) = export(
        digits_artifact, "tflite-fp32", tmp_path / "o", allow_mismatch=True, max_eval=100, **QUIET
    )
    metrics = artifact.manifest["metrics"]
    assert metrics["parity"] == "fail" and metrics["parity_failures"]
