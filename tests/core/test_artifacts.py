import json

import pytest

from edgesmith.core.artifacts import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    ArtifactWriter,
    artifact_id,
    read_artifact,
)
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import InputRecord, Metrics, OutputRecord
from edgesmith.core.normalization import Normalization


@pytest.fixture
def write(write_artifact):
    """``write(out, payload=b"weights", **overrides)``: a keras artifact with a by-product file."""

    def write_(out, payload=b"weights", **overrides):
        files = {"model.bin": payload, "notes.txt": b"by-product"}
        return write_artifact(out, files, **{"config": {"epochs": 2}, **overrides})

    return write_


def test_round_trip_records_every_file_and_required_key(tmp_path, write):
    written = write(tmp_path / "a")
    read = read_artifact(tmp_path / "a")
    assert read.manifest == written.manifest
    assert read.manifest.schema_version == SCHEMA_VERSION
    assert set(read.manifest.files) == {"model.bin", "notes.txt"}
    assert read.model_path == tmp_path / "a" / "model.bin"
    assert read.labels == ["a", "b"]
    assert read.manifest.tool_versions["python"]
    assert not (tmp_path / "a.partial").exists()


def test_id_depends_on_model_files_only(tmp_path, write):
    first = write(tmp_path / "a")
    second = write(tmp_path / "b", metrics=Metrics(accuracy=0.9, num_eval=2))
    third = write(tmp_path / "c", payload=b"other weights")
    assert first.id == second.id != third.id
    assert first.id == artifact_id({"model.bin": first.manifest.files["model.bin"]})


def test_failure_leaves_nothing_behind(tmp_path):
    out = tmp_path / "a"
    with pytest.raises(RuntimeError), ArtifactWriter(out) as writer:
        (writer.dir / "model.bin").write_bytes(b"half")
        raise RuntimeError("crash mid-stage")
    assert not out.exists() and not (tmp_path / "a.partial").exists()


def test_resumable_writer_keeps_its_work_and_refuses_to_overwrite_it(tmp_path):
    out = tmp_path / "a"
    with pytest.raises(RuntimeError), ArtifactWriter(out, keep_if="checkpoint") as writer:
        (writer.dir / "checkpoint").write_text("epoch 1")
        raise RuntimeError("interrupted")
    assert (tmp_path / "a.partial" / "checkpoint").is_file()
    with pytest.raises(EdgesmithError, match="--resume"), ArtifactWriter(out, keep_if="checkpoint"):
        pass
    with ArtifactWriter(out, keep_if="checkpoint", resume=True) as writer:
        assert (writer.dir / "checkpoint").read_text() == "epoch 1"


def test_a_failure_before_any_checkpoint_leaves_nothing_to_resume(tmp_path):
    out = tmp_path / "a"
    with pytest.raises(RuntimeError), ArtifactWriter(out, keep_if="checkpoint") as writer:
        (writer.dir / "train_config.json").write_text("{}")
        raise RuntimeError("the model does not fit the data")
    assert list(tmp_path.iterdir()) == []  # a next run is not told to --resume nothing


def test_non_empty_out_is_refused_but_an_empty_one_is_used(tmp_path, write):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(EdgesmithError, match="not empty"):
        write(tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    assert write(tmp_path / "empty").path == tmp_path / "empty"


def test_unknown_stage_or_missing_model_file_is_refused(tmp_path, write):
    with pytest.raises(EdgesmithError, match="stage must be one of"):
        write(tmp_path / "a", stage="deploy")
    with pytest.raises(EdgesmithError, match="was not written"):
        write(tmp_path / "b", model_files=["absent.bin"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def rewrite_manifest(path, change):
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    change(manifest)
    (path / MANIFEST_NAME).write_text(json.dumps(manifest))


def test_newer_schema_is_refused_with_upgrade_hint(tmp_path, write):
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


def test_changed_or_missing_file_is_detected(tmp_path, write):
    write(tmp_path / "a")
    (tmp_path / "a" / "model.bin").write_bytes(b"tampered")
    with pytest.raises(EdgesmithError, match="sha256 mismatch"):
        read_artifact(tmp_path / "a")
    assert read_artifact(tmp_path / "a", verify=False).format == "keras"
    (tmp_path / "a" / "model.bin").unlink()
    with pytest.raises(EdgesmithError, match="missing its file model.bin"):
        read_artifact(tmp_path / "a")


def test_missing_dir_plain_dir_and_model_file_paths(tmp_path, write):
    with pytest.raises(EdgesmithError, match="not found"):
        read_artifact(tmp_path / "nope")
    with pytest.raises(EdgesmithError, match="no manifest.json"):
        read_artifact(tmp_path)
    write(tmp_path / "a")
    assert read_artifact(tmp_path / "a" / "model.bin").path == tmp_path / "a"


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


SECRET = b"the user's private key"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../secret", "relative, normalised path"),
        ("/tmp/secret", "relative, normalised path"),
        ("sub/../../secret", "relative, normalised path"),
        ("./model.bin", "relative, normalised path"),
        ("a\\..\\..\\secret", "relative, normalised path"),
    ],
)
def test_manifest_file_names_must_stay_inside_the_folder(tmp_path, name, message, write):
    """Issue 14 item 5: names like ../x or absolute paths were accepted (and hashed)."""
    write(tmp_path / "a")
    (tmp_path / "secret").write_bytes(SECRET)
    rewrite_manifest(tmp_path / "a", lambda m: m["files"].update({name: _sha(SECRET)}))
    with pytest.raises(EdgesmithError, match=message):
        read_artifact(tmp_path / "a")
    with pytest.raises(EdgesmithError, match=message):
        read_artifact(tmp_path / "a", verify=False)


def test_model_file_must_be_a_hashed_file(tmp_path, write):
    write(tmp_path / "a")
    (tmp_path / "a" / "extra.bin").write_bytes(b"unlisted")
    rewrite_manifest(tmp_path / "a", lambda m: m.update(model_file="extra.bin"))
    with pytest.raises(EdgesmithError, match="model_file 'extra.bin' is not among the hashed"):
        read_artifact(tmp_path / "a")
    rewrite_manifest(tmp_path / "a", lambda m: m.update(model_file="../secret"))
    with pytest.raises(EdgesmithError, match="model_file name '../secret'"):
        read_artifact(tmp_path / "a")


def test_a_listed_file_that_links_outside_is_refused(tmp_path, write):
    write(tmp_path / "a")
    (tmp_path / "secret").write_bytes(SECRET)
    (tmp_path / "a" / "link.bin").symlink_to(tmp_path / "secret")
    rewrite_manifest(tmp_path / "a", lambda m: m["files"].update({"link.bin": _sha(SECRET)}))
    with pytest.raises(EdgesmithError, match="link.bin is a link leading outside"):
        read_artifact(tmp_path / "a")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input": None}, "input must be an object"),
        ({"labels": 5}, "labels must be a list"),
        ({"labels": ["a", 5]}, "labels must be a list of class names"),
        ({"metrics": []}, "metrics must be an object"),
        ({"parent": 7}, "parent must be an artifact id or null"),
        ({"input": {"shape": [8, -1]}}, "input.shape must be a list of positive integers"),
        ({"files": {"model.bin": "abc"}}, "must be a sha256 hex digest"),
    ],
)
def test_malformed_manifests_exit_2_in_info(tmp_path, capsys, change, message, write):
    """Issue 14 item 7: ``info`` ended with a traceback (exit 3) on input: null, labels: 5."""
    from edgesmith.app.cli import main

    write(tmp_path / "a")
    rewrite_manifest(tmp_path / "a", lambda m: m.update(change))
    assert main(["info", str(tmp_path / "a"), "--no-verify"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metrics": {"accuracy": "high"}}, "metrics.accuracy must be a number. Received: 'high'"),
        ({"metrics": {"params": "many"}}, "metrics.params must be a non-negative integer"),
        ({"dataset": {"spec": "digits", "fingerprint": 12}}, "dataset.fingerprint must be a str"),
        (
            {"input": {"shape": [8, 8, 1], "normalization": {"name": "unit", "scale": "x"}}},
            "input.normalization must be a normalization record",
        ),
        ({"output": {"kind": "scores"}}, "output.kind must be one of"),
        ({"qat": "yes"}, "qat must be true or false. Received: 'yes'"),
        ({"metrics": {"acuracy": 0.5}}, "unknown key metrics.acuracy"),
        ({"sections": {}}, "unknown key sections"),
    ],
)
def test_odd_nested_values_are_named_in_one_line(tmp_path, capsys, change, message, write):
    """Nested values are typed now: a wrong one exits 2 naming its key (it used to print)."""
    from edgesmith.app.cli import main

    write(tmp_path / "a")
    rewrite_manifest(tmp_path / "a", lambda m: m.update(change))
    assert main(["info", str(tmp_path / "a"), "--no-verify"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_typed_accessors(tmp_path, write):
    artifact = write(
        tmp_path / "a",
        input_spec=InputRecord(shape=(8, 8, 1), normalization=Normalization()),
        output=OutputRecord(kind="logits"),
        qat=True,
        parent="abc",
    )
    assert artifact.stage == "train" and artifact.technique == "resnet8"
    assert artifact.parent == "abc" and artifact.kind == "logits" and artifact.is_qat
    assert artifact.input_spec.shape == (8, 8, 1)
    assert artifact.normalization.to_dict()["name"] == "unit"
    assert artifact.trusted_model_code is False
    bare = write(tmp_path / "b")
    assert bare.kind == "probabilities" and not bare.is_qat
    with pytest.raises(EdgesmithError, match="has no normalization"):
        _ = bare.normalization


def test_a_manifest_that_is_a_link_or_too_large_is_refused(tmp_path, monkeypatch, write):
    """Issue 23: manifest.json itself could be a link leading out of the artifact."""
    import edgesmith.core.artifacts as artifacts

    write(tmp_path / "a")
    manifest = tmp_path / "a" / "manifest.json"
    outside = tmp_path / "elsewhere.json"
    outside.write_text(manifest.read_text())
    manifest.unlink()
    manifest.symlink_to(outside)
    with pytest.raises(EdgesmithError, match="manifest.json is a symbolic link"):
        read_artifact(tmp_path / "a")
    manifest.unlink()
    manifest.write_text(outside.read_text())
    read_artifact(tmp_path / "a")
    monkeypatch.setattr(artifacts, "MAX_MANIFEST_BYTES", 100)
    with pytest.raises(EdgesmithError, match="a manifest is at most 100"):
        read_artifact(tmp_path / "a")
