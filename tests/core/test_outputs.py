"""Output safety: ownership ledger, the --out lock, and ArtifactWriter using both (issue 14)."""

import json
import os
import socket
import subprocess
import sys

import pytest

from edgesmith.core import outputs
from edgesmith.core.artifacts import ArtifactWriter, read_artifact
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import silent


def test_folders_and_files_edgesmith_did_not_write_are_refused(tmp_path):
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "thesis.tex").write_text("years of work")
    with pytest.raises(EdgesmithError, match="mine is a folder edgesmith did not write"):
        outputs.remove_owned(user_dir)
    assert (user_dir / "thesis.tex").exists()
    user_file = tmp_path / "README.md"
    user_file.write_text("mine")
    with pytest.raises(EdgesmithError, match="README.md is a file"):
        outputs.check_replaceable(user_file)
    outputs.check_replaceable(tmp_path / "missing")  # nothing there: fine


def test_marked_folders_and_recorded_unchanged_files_may_be_replaced(tmp_path):
    ours = tmp_path / "build"
    ours.mkdir()
    outputs.mark_owned_dir(ours, purpose="test")
    (ours / "x").write_text("x")
    outputs.record_written(ours / "x")
    assert outputs.is_owned(ours) and outputs.is_owned(ours / "x")
    outputs.remove_owned(ours)
    assert not ours.exists()
    written = tmp_path / "r8.md"
    written.write_text("table")
    outputs.record_written(written)
    assert outputs.is_owned(written)
    written.write_text("the user edited it")
    assert not outputs.is_owned(written)  # changed since: no longer ours


def test_a_forged_or_linked_marker_does_not_make_a_folder_ours(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / outputs.MARKER_NAME).write_text("not json")
    assert not outputs.is_owned(folder)
    real = tmp_path / "real"
    real.mkdir()
    outputs.mark_owned_dir(real, purpose="test")
    link = tmp_path / "link"
    link.symlink_to(real)
    assert not outputs.is_owned(link)


def test_second_lock_holder_exits_2_naming_the_first(tmp_path):
    out = tmp_path / "run"
    with outputs.OutputLock(out):
        with pytest.raises(
            EdgesmithError, match=f"in use by another edgesmith run \\(pid {os.getpid()}"
        ):
            outputs.OutputLock(out).acquire()
    assert not outputs.lock_path(out).exists()


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    out = tmp_path / "run"
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(child.stdout)
    outputs.lock_path(out).write_text(
        json.dumps({"pid": dead, "host": socket.gethostname(), "token": "x"})
    )
    with outputs.OutputLock(out):
        assert json.loads(outputs.lock_path(out).read_text())["pid"] == os.getpid()
    # a lock from another host is never taken over: its pid means nothing here
    outputs.lock_path(out).write_text(json.dumps({"pid": dead, "host": "elsewhere", "token": "x"}))
    with pytest.raises(EdgesmithError, match="elsewhere"):
        outputs.OutputLock(out).acquire()


def test_two_writers_into_one_out_second_exits_2_first_publishes_its_own_model(
    tmp_path, commit_artifact
):
    """Issue 14 item 6: the second run used to remove the first's live .partial."""
    out = tmp_path / "run"
    with ArtifactWriter(out) as first:
        (first.dir / "model.bin").write_bytes(b"first model")
        with pytest.raises(EdgesmithError, match="in use by another edgesmith run"):
            with ArtifactWriter(out) as second:
                (second.dir / "model.bin").write_bytes(b"second model")
                commit_artifact(second)
        assert (first.dir / "model.bin").read_bytes() == b"first model"
        artifact = commit_artifact(first)
    assert artifact.model_path.read_bytes() == b"first model"
    read_artifact(out)
    assert not outputs.lock_path(out).exists()


def test_a_partial_edgesmith_did_not_create_is_never_removed(tmp_path):
    out = tmp_path / "run"
    user_partial = tmp_path / "run.partial"
    user_partial.mkdir()
    (user_partial / "notes.txt").write_text("mine")
    with pytest.raises(EdgesmithError, match="run.partial exists and edgesmith did not create it"):
        with ArtifactWriter(out):
            pass
    assert (user_partial / "notes.txt").read_text() == "mine"
    assert not outputs.lock_path(out).exists()


def test_a_foreign_partial_is_refused_before_any_work(tmp_path, monkeypatch):
    """``import`` used to evaluate the model first and refuse ``x.partial`` only when writing."""
    from edgesmith.core.artifacts import check_output_dir
    from edgesmith.train import importer

    (tmp_path / "x.partial").mkdir()
    (tmp_path / "x.partial" / "notes.txt").write_text("mine")

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(importer, "check_model_file", no_work)
    monkeypatch.setattr(importer, "load_dataset", no_work)
    with pytest.raises(EdgesmithError, match="x.partial exists and edgesmith did not create it"):
        importer.import_model(tmp_path / "m.h5", "digits", tmp_path / "x", report=silent)
    assert (tmp_path / "x.partial" / "notes.txt").read_text() == "mine"
    assert check_output_dir(tmp_path / "x", staged=False) == tmp_path / "x"  # not staged: fine
    (tmp_path / "y.partial").symlink_to(tmp_path / "x.partial")
    with pytest.raises(EdgesmithError, match="y.partial exists"):
        check_output_dir(tmp_path / "y")


def test_an_interrupted_partial_of_ours_is_cleaned_up(tmp_path, commit_artifact):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), ArtifactWriter(out, keep_if="model.bin") as writer:
        (writer.dir / "model.bin").write_bytes(b"half")
        raise RuntimeError("killed")
    assert outputs.is_owned(tmp_path / "run.partial")
    with ArtifactWriter(out) as writer:
        (writer.dir / "model.bin").write_bytes(b"whole")
        artifact = commit_artifact(writer)
    assert artifact.model_path.read_bytes() == b"whole"
    assert outputs.MARKER_NAME not in artifact.manifest.files


@pytest.mark.parametrize("out", [".", ".."])
def test_out_dot_is_refused_with_exit_2(tmp_path, monkeypatch, out):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(EdgesmithError, match="current folder"):
        ArtifactWriter(out)


def test_sensitivity_out_never_overwrites_a_file_edgesmith_did_not_write(tmp_path, capsys):
    """``compress sensitivity --out README.json`` used to overwrite the user's README.md."""
    from edgesmith.app.cli import main

    readme = tmp_path / "README.md"
    readme.write_text("the user's readme")
    code = main(
        [
            "compress",
            "sensitivity",
            "--from",
            str(tmp_path / "r8"),
            "--out",
            str(tmp_path / "README.json"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "README.md" in err and "--overwrite" in err
    assert readme.read_text() == "the user's readme"


def test_sensitivity_outputs_recorded_by_edgesmith_may_be_rewritten(tmp_path):
    from edgesmith.core.outputs import check_files_writable

    files = [tmp_path / "r8.json", tmp_path / "r8.md", tmp_path / "r8.png"]
    for path in files[:2]:
        path.write_text("written by a previous run")
        outputs.record_written(path)
    check_files_writable(files)  # ours and unchanged (the .png is absent)
    files[1].write_text("edited by hand")
    with pytest.raises(EdgesmithError, match="r8.md"):
        check_files_writable(files)
    check_files_writable(files, overwrite=True)


@pytest.mark.slow
def test_quantize_never_removes_a_partial_it_did_not_create(digits_artifact, tmp_path):
    """``compress quantize`` used to ``rmtree(<out>.partial)`` whoever made it."""
    from edgesmith.compress.autotune import quantize_within_budget
    from edgesmith.compress.config import AutotuneConfig

    user_partial = tmp_path / "q.partial"
    user_partial.mkdir()
    (user_partial / "notes.txt").write_text("mine")
    config = AutotuneConfig(attempts=("ptq",), max_eval=64, calibration_samples=16)
    with pytest.raises(EdgesmithError, match="q.partial exists and edgesmith did not create it"):
        quantize_within_budget(digits_artifact, config, tmp_path / "q", report=silent)
    assert (user_partial / "notes.txt").read_text() == "mine"


def test_sensitivity_never_writes_into_the_source_artifact(tmp_path, capsys):
    from edgesmith.app.cli import main

    artifact = tmp_path / "r8"
    artifact.mkdir()
    (artifact / "manifest.json").write_text("{}")
    (artifact / "NOTES.md").write_text("mine")
    for out in ("manifest.json", "NOTES.json"):
        args = ["compress", "sensitivity", "--from", str(artifact), "--out", str(artifact / out)]
        assert main([*args, "--overwrite"]) == 2
        assert "inside the artifact" in capsys.readouterr().err
    assert (artifact / "manifest.json").read_text() == "{}"
    assert (artifact / "NOTES.md").read_text() == "mine"


def sealed_folder(path):
    """A folder as a published bundle leaves it: files, a subfolder and a link, all sealed."""
    path.mkdir()
    outputs.mark_staging_dir(path, path, purpose="test")
    (path / "model.tflite").write_bytes(b"model")
    (path / "plots").mkdir()
    (path / "plots" / "latency.png").write_bytes(b"png")
    (path / "link").symlink_to("model.tflite")
    outputs.seal_owned_dir(path)
    return path


def test_a_marker_covers_only_the_entries_edgesmith_recorded(tmp_path):
    """Issue 23: a marked folder used to count as all ours, the user's files in it included."""
    bundle = sealed_folder(tmp_path / "bundle")
    assert outputs.is_owned(bundle) and outputs.foreign_entry(bundle) is None
    (bundle / "plots" / "my-annotations.png").write_bytes(b"the user's")
    with pytest.raises(EdgesmithError) as caught:
        outputs.remove_owned(bundle)
    message = str(caught.value)
    assert f"{bundle / 'plots' / 'my-annotations.png'} was not written by edgesmith" in message
    assert "\n" not in message
    assert (bundle / "plots" / "my-annotations.png").read_bytes() == b"the user's"
    assert (bundle / "model.tflite").read_bytes() == b"model"  # nothing deleted
    (bundle / "plots" / "my-annotations.png").unlink()
    (bundle / "model.tflite").write_bytes(b"the user retrained it")  # recorded, but changed
    assert outputs.foreign_entry(bundle) == bundle / "model.tflite"
    (bundle / "model.tflite").write_bytes(b"model")
    (bundle / "link").unlink()
    (bundle / "link").symlink_to("/etc/passwd")  # a recorded name, another target
    assert outputs.foreign_entry(bundle) == bundle / "link"


def test_a_folder_marked_before_the_ledger_lists_nothing_as_ours(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / outputs.MARKER_NAME).write_text(json.dumps({"tool": "edgesmith", "owned_dir": True}))
    (old / "file").write_text("x")
    assert outputs.foreign_entry(old) == old / "file"
    with pytest.raises(EdgesmithError, match="file was not written by edgesmith"):
        outputs.remove_owned(old)
    assert old.is_dir()


def test_nested_folders_locks_and_stages_count_by_their_own_marks(tmp_path):
    step = tmp_path / "step"
    step.mkdir()
    sealed_folder(step / "model")  # a published artifact of ours
    stage = step / "other.partial"
    stage.mkdir()
    outputs.mark_staging_dir(stage, step / "other", purpose="test")
    (stage / "half").write_text("interrupted")  # a staging leftover: ours whole
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    lock = {"pid": int(dead.stdout), "host": socket.gethostname(), "token": "t"}
    (step / "model.lock").write_text(json.dumps(lock))
    assert outputs.foreign_entry(step) == step  # unmarked itself
    assert outputs.foreign_entry(step, unmarked_ok=True) is None
    (step / "poetry.lock").write_text("[[package]]")  # named .lock, but not an edgesmith lock
    assert outputs.foreign_entry(step, unmarked_ok=True) == step / "poetry.lock"


def test_a_published_folder_named_like_staging_is_never_removed_as_staging(
    tmp_path, commit_artifact
):
    """Issue 23: ``--out x.partial`` was deleted as stale staging by a run writing ``--out x``."""
    out = tmp_path / "x"
    with ArtifactWriter(tmp_path / "x.partial") as writer:
        (writer.dir / "model.bin").write_bytes(b"the published x.partial")
        commit_artifact(writer)
    published = read_artifact(tmp_path / "x.partial")
    with pytest.raises(EdgesmithError, match="x.partial exists and edgesmith did not create it"):
        with ArtifactWriter(out):
            pass
    with pytest.raises(EdgesmithError, match="did not write as staging of x"):
        outputs.remove_stale_stage(tmp_path / "x.partial", out)
    assert read_artifact(tmp_path / "x.partial").id == published.id
    # a staging mark for another name does not make a folder this name's staging either
    other = tmp_path / "y.partial"
    other.mkdir()
    outputs.mark_staging_dir(other, tmp_path / "z", purpose="test")
    with pytest.raises(EdgesmithError, match="did not write as staging of y"):
        outputs.remove_stale_stage(other, tmp_path / "y")
    outputs.mark_staging_dir(other, tmp_path / "y", purpose="test")
    outputs.remove_stale_stage(other, tmp_path / "y")
    assert not other.exists()


def test_a_published_artifact_lists_exactly_its_files(tmp_path, commit_artifact):
    with ArtifactWriter(tmp_path / "run") as writer:
        (writer.dir / "model.bin").write_bytes(b"m")
        artifact = commit_artifact(writer)
    ledger = json.loads((artifact.path / outputs.MARKER_NAME).read_text())
    assert sorted(ledger["files"]) == ["manifest.json", "model.bin"]
    assert "staging_of" not in ledger and outputs.is_owned(artifact.path)
