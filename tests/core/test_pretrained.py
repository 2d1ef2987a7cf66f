"""The pretrained models in the package: listed, copied out checked, refused when changed."""

import shutil

import pytest

from edgesmith.core import pretrained
from edgesmith.core.artifacts import read_artifact
from edgesmith.core.errors import EdgesmithError

NAMES = ("resnet8-cifar10", "resnet8-thin-cifar10")


def test_the_index_lists_each_entry_with_how_it_was_made_and_what_it_measured():
    assert tuple(pretrained.entries()) == NAMES
    for entry in pretrained.entries().values():
        assert set(entry.artifacts) == {"keras", "tflite-int8"}
        assert entry.made["recipe"].endswith("cifar10-best.yaml") and entry.made["epochs"] == 200
        assert entry.made["wall_seconds"] > 0 and "H200" in entry.made["machine"]
        assert 0.85 < entry.measured["int8_accuracy_cifar10_test"] < 0.90
    thin = pretrained.find("zoo:resnet8-thin-cifar10")
    assert thin.made["widths"]["stage3_block1_shortcut"] == 48
    assert thin.measured["macs"] == 7_176_672 and thin.measured["params"] == 45_498


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fmt", ["keras", "tflite-int8"])
def test_get_writes_an_ordinary_checked_artifact(tmp_path, name, fmt):
    entry = pretrained.find(name)
    artifact = pretrained.get(name, tmp_path / "out", fmt)
    again = read_artifact(tmp_path / "out")  # every file re-hashed
    assert again.manifest.id == artifact.manifest.id
    assert artifact.manifest.dataset.spec == "cifar10"  # not the training machine's path
    assert artifact.manifest.stage == ("train" if fmt == "keras" else "export")
    if fmt == "tflite-int8":
        keras_id = read_artifact(entry.folder("keras"), verify=False).manifest.id
        assert artifact.manifest.parent == keras_id
        accuracy = entry.measured["int8_accuracy_cifar10_test"]
        assert artifact.manifest.metrics.accuracy == pytest.approx(accuracy)


def test_get_refuses_a_used_folder_an_unknown_name_and_format(tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "mine.txt").write_text("keep")
    with pytest.raises(EdgesmithError, match="is not empty"):
        pretrained.get("resnet8-cifar10", tmp_path / "used")
    assert (tmp_path / "used" / "mine.txt").read_text() == "keep"
    with pytest.raises(EdgesmithError, match="no pretrained model 'resnet9'.*resnet8-cifar10"):
        pretrained.get("resnet9", tmp_path / "a")
    with pytest.raises(EdgesmithError, match="ships no 'onnx' artifact"):
        pretrained.get("resnet8-cifar10", tmp_path / "b", "onnx")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_changed_shipped_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "pretrained"
    shutil.copytree(pretrained.FOLDER, copy)
    model = copy / "resnet8-cifar10" / "tflite-int8" / "model.tflite"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "FOLDER", copy)
    with pytest.raises(EdgesmithError, match="missing or changed .* reinstall edgesmith"):
        pretrained.get("resnet8-cifar10", tmp_path / "out", "tflite-int8")
    assert not (tmp_path / "out").exists()
    pretrained.get("resnet8-cifar10", tmp_path / "keras")  # the untouched artifact still comes
