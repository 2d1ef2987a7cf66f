import json

import pytest

from edgesmith.artifacts import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    ArtifactWriter,
    artifact_id,
    read_artifact,
)
from edgesmith.errors import EdgesmithError


def write(out, payload=b"weights", **overrides):
    with ArtifactWriter(out) as writer:
        (writer.dir / "model.bin").write_bytes(payload)
        (writer.dir / "notes.txt").write_text("by-product")
        fields = dict(
            model_files=["model.bin"],
            stage="train",
            technique="resnet8",
            fmt="keras",
            config={"epochs": 2},
            input_spec={"shape": [8, 8, 1]},
            labels=["a", "b"],
            dataset={"spec": "digits"},
            metrics={"accuracy": 0.5, "num_eval": 2},
        )
        fields.update(overrides)
        return writer.commit(**fields)


def test_round_trip_records_every_file_and_required_key(tmp_path):
    written = write(tmp_path / "a")
    read = read_artifact(tmp_path / "a")
    assert read.manifest == written.manifest
    assert read.manifest["schema_version"] == SCHEMA_VERSION
    assert set(read.manifest["files"]) == {"model.bin", "notes.txt"}
    assert read.model_path == tmp_path / "a" / "model.bin"
    assert read.labels == ["a", "b"]
    assert read.manifest["tool_versions"]["python"]
    assert not (tmp_path / "a.partial").exists()


def test_id_depends_on_model_files_only(tmp_path):
    first = write(tmp_path / "a")
    second = write(tmp_path / "b", metrics={"accuracy": 0.9, "num_eval": 2})
    third = write(tmp_path / "c", payload=b"other weights")
    assert first.id == second.id != third.id
    assert first.id == artifact_id({"model.bin": first.manifest["files"]["model.bin"]})


def test_failure_leaves_nothing_behind(tmp_path):
    out = tmp_path / "a"
    with pytest.raises(RuntimeError), ArtifactWriter(out) as writer:
        (writer.dir / "model.bin").write_bytes(b"half")
        raise RuntimeError("crash mid-stage")
    assert not out.exists() and not (tmp_path / "a.partial").exists()


def test_resumable_writer_keeps_its_work_and_refuses_to_overwrite_it(tmp_path):
    out = tmp_path / "a"
    with pytest.raises(RuntimeError), ArtifactWriter(out, keep_on_error=True) as writer:
        (writer.dir / "checkpoint").write_text("epoch 1")
        raise RuntimeError("interrupted")
    assert (tmp_path / "a.partial" / "checkpoint").is_file()
    with pytest.raises(EdgesmithError, match="--resume"), ArtifactWriter(out, keep_on_error=True):
        pass
    with ArtifactWriter(out, keep_on_error=True, resume=True) as writer:
        assert (writer.dir / "checkpoint").read_text() == "epoch 1"


def test_non_empty_out_is_refused_but_an_empty_one_is_used(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(EdgesmithError, match="not empty"):
        write(tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    assert write(tmp_path / "empty").path == tmp_path / "empty"


def test_unknown_stage_or_missing_model_file_is_refused(tmp_path):
    with pytest.raises(EdgesmithError, match="stage must be one of"):
        write(tmp_path / "a", stage="deploy")
    with pytest.raises(EdgesmithError, match="was not written"):
        write(tmp_path / "b", model_files=["absent.bin"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def rewrite_manifest(path, change):
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    change(manifest)
    (path / MANIFEST_NAME).write_text(json.dumps(manifest))


def test_newer_schema_is_refused_with_upgrade_hint(tmp_path):
    write(tmp_path / "a")
    rewrite_manifest(tmp_path / "a", lambda m: m.update(schema_version=SCHEMA_VERSION + 1))
    with pytest.raises(EdgesmithError, match="newer edgesmith.*pip install -U"):
        read_artifact(tmp_path / "a")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is corrupt"),
        ('{"name": "something else"}', "not an edgesmith manifest"),
        ('{"schema_version": "one"}', "positive integer"),
        ('{"schema_version": 1}', "lacks required key"),
    ],
)
def test_corrupt_or_foreign_manifests_are_named(tmp_path, text, message):
    (tmp_path / MANIFEST_NAME).write_text(text)
    with pytest.raises(EdgesmithError, match=message):
        read_artifact(tmp_path)


def test_changed_or_missing_file_is_detected(tmp_path):
    write(tmp_path / "a")
    (tmp_path / "a" / "model.bin").write_bytes(b"tampered")
    with pytest.raises(EdgesmithError, match="sha256 mismatch"):
        read_artifact(tmp_path / "a")
    assert read_artifact(tmp_path / "a", verify=False).format == "keras"
    (tmp_path / "a" / "model.bin").unlink()
    with pytest.raises(EdgesmithError, match="missing its file model.bin"):
        read_artifact(tmp_path / "a")


def test_missing_dir_plain_dir_and_model_file_paths(tmp_path):
    with pytest.raises(EdgesmithError, match="not found"):
        read_artifact(tmp_path / "nope")
    with pytest.raises(EdgesmithError, match="no manifest.json"):
        read_artifact(tmp_path)
    write(tmp_path / "a")
    assert read_artifact(tmp_path / "a" / "model.bin").path == tmp_path / "a"
