"""build --out never deletes or overwrites what the user put there; one build per folder at once.

The refusals happen before any work (no training, no TensorFlow), so these tests take seconds;
a full build, its rerun into the same folder and the bundle replacement are in test_build.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgesmith.app.build import cache
from edgesmith.app.build.folders import (
    check_build_dir,
    claim_build_dir,
    fresh_stage,
    publish_dir,
    write_text,
)
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.outputs import (
    MARKER_NAME,
    OutputLock,
    is_owned,
    mark_staging_dir,
    record_written,
    seal_owned_dir,
)


def build_cli(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgesmith", "build", "--device", "cpu-x86", "--data", "digits",
         "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its text: to show nothing changed."""
    return {
        p.relative_to(folder).as_posix(): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def refused_build(error_line):
    """``refused_build(out) -> str``: the one error line of a build into ``out``, which must
    leave every file under ``out`` as it was."""

    def run(out: Path) -> str:
        before = tree(out)
        line = error_line(build_cli(out))
        assert tree(out) == before
        return line

    return run


def users_file(path: Path, text: str = "the user's") -> Path:
    """A file of the user's at ``path``, in a folder made for it: to show that it is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def earlier_build(out: Path) -> Path:
    """A folder as an earlier build leaves it (marked), with a bundle of its own."""
    work = claim_build_dir(out)
    bundle = out / "bundle"
    bundle.mkdir()
    (bundle / "model.tflite").write_text("old model")
    (bundle / "plots").mkdir()
    (bundle / "plots" / "latency.png").write_text("old plot")
    seal_owned_dir(bundle, purpose="test bundle")
    (out / "candidates.json").write_text("{}")
    record_written(out / "candidates.json")
    return work


def test_a_folder_of_the_users_is_refused_before_any_work(tmp_path, refused_build):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("years of work")
    (out / "bundle").mkdir()
    (out / "bundle" / "figure.png").write_text("mine")
    line = refused_build(out)
    assert f"--out: {out} is a folder edgesmith did not write" in line
    assert "earlier edgesmith build" in line
    assert not (out / MARKER_NAME).exists()
    assert not (tmp_path / "thesis.lock").exists()


@pytest.mark.parametrize(
    "name", ["bundle", "bundle.partial", "bundle.old", "work/bench", "work/bench.partial"]
)
def test_a_users_folder_inside_a_build_folder_is_refused(tmp_path, name, refused_build):
    out = tmp_path / "b"
    earlier_build(out)
    theirs = out / name
    theirs.mkdir(exist_ok=True)
    if name == "bundle":  # the user's own bundle folder: an earlier one of theirs, unmarked
        (theirs / MARKER_NAME).unlink()
    (theirs / "keep.txt").write_text("the user's")
    assert f"{theirs} is a folder edgesmith did not write" in refused_build(out)


def test_a_file_or_link_as_out_is_refused(tmp_path, error_line):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    assert "is a symbolic link" in error_line(build_cli(link))
    afile = tmp_path / "f"
    afile.write_text("x")
    assert "is a file; expected a build directory" in error_line(build_cli(afile))
    assert afile.read_text() == "x" and list(target.iterdir()) == []


def test_a_second_build_into_the_same_out_exits_2_at_once(tmp_path, refused_build):
    out = tmp_path / "b"
    earlier_build(out)
    with OutputLock(out):  # a build that is running (its lock file is beside out, not in it)
        line = refused_build(out)
    assert f"--out {out} is in use by another edgesmith run (pid {os.getpid()}" in line


def test_new_empty_and_earlier_build_folders_are_accepted(tmp_path):
    new = tmp_path / "new"
    check_build_dir(new)
    assert claim_build_dir(new) == new / "work" and is_owned(new) and is_owned(new / "work")
    empty = tmp_path / "empty"
    empty.mkdir()
    check_build_dir(empty)
    claim_build_dir(empty)
    assert is_owned(empty)
    again = tmp_path / "again"
    earlier_build(again)
    check_build_dir(again)  # an earlier build's own folder: a rerun may replace its bundle


def test_publish_replaces_only_an_earlier_copy_of_edgesmiths(tmp_path):
    out = tmp_path / "b"
    earlier_build(out)
    stage = fresh_stage(out / "bundle", "test")
    (stage / "model.tflite").write_text("new model")
    publish_dir(stage, out / "bundle")
    assert (out / "bundle" / "model.tflite").read_text() == "new model"
    assert not (out / "bundle.partial").exists() and not (out / "bundle.old").exists()
    assert is_owned(out / "bundle")
    kept = users_file(tmp_path / "mine" / "x")
    stage = fresh_stage(tmp_path / "other", "test")
    with pytest.raises(EdgesmithError, match="mine is a folder edgesmith did not write"):
        publish_dir(stage, kept.parent)
    assert kept.read_text() == "the user's"


def test_a_users_partial_folder_is_never_removed(tmp_path):
    draft = users_file(tmp_path / "bundle.partial" / "draft.txt")
    with pytest.raises(EdgesmithError, match="bundle.partial is a folder edgesmith did not"):
        fresh_stage(tmp_path / "bundle", "test")
    assert draft.read_text() == "the user's"
    ours = fresh_stage(tmp_path / "bench", "test")  # our own leftover is cleared
    (ours / "old").write_text("leftover")
    assert list(fresh_stage(tmp_path / "bench", "test").iterdir()) == [ours / MARKER_NAME]


def test_files_are_written_through_a_staging_name(tmp_path):
    out = tmp_path / "b"
    claim_build_dir(out)
    write_text(out / "candidates.md", "table")
    assert (out / "candidates.md").read_text() == "table"
    assert sorted(p.name for p in out.iterdir()) == [MARKER_NAME, "candidates.md", "work"]
    mine = users_file(tmp_path / "notes" / "candidates.md", "mine")
    with pytest.raises(EdgesmithError, match="candidates.md is a file edgesmith did not write"):
        write_text(mine, "table")
    assert mine.read_text() == "mine"


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_clearing_a_step_keeps_anything_the_user_put_there(tmp_path):
    step = tmp_path / "work" / "train-abc"
    (step / "model.partial").mkdir(parents=True)
    mark_staging_dir(step / "model.partial", step / "model", purpose="artifact")
    (step / "my-notes.txt").write_text("the user's")
    with pytest.raises(EdgesmithError, match="my-notes.txt is in the build's work folder"):
        cache.clear(step)
    assert (step / "my-notes.txt").read_text() == "the user's"
    assert (step / "model.partial").is_dir()


def test_clearing_an_interrupted_step_removes_only_its_own_leftovers(tmp_path):
    step = tmp_path / "work" / "train-abc"
    (step / "model.partial").mkdir(parents=True)
    mark_staging_dir(step / "model.partial", step / "model", purpose="artifact")
    (step / "model.partial" / "weights").write_text("half")
    lock = {"pid": dead_pid(), "host": socket.gethostname(), "token": "t", "created": "x"}
    (step / "model.lock").write_text(json.dumps(lock))  # the killed run's lock
    cache.clear(step)
    assert not step.exists()
    finished = tmp_path / "work" / "export-abc"
    finished.mkdir()
    (finished / "export.json").write_text("[]")
    cache.write_key(finished, "export", "k" * 64, {}, None)  # a finished step is sealed
    cache.clear(finished)
    assert not finished.exists()


def test_clearing_a_step_another_run_is_writing_exits_2(tmp_path):
    step = tmp_path / "work" / "train-abc"
    step.mkdir(parents=True)
    with OutputLock(step / "model"):
        with pytest.raises(EdgesmithError, match="is in use by another edgesmith run"):
            cache.clear(step)
    assert step.is_dir()


@pytest.mark.parametrize(
    "added", ["bundle/notes.txt", "bundle/plots/annotated.png", "work/bench/my-run.json"]
)
def test_a_file_the_user_added_to_a_build_folder_stops_the_rerun_naming_it(
    tmp_path, added, refused_build
):
    """Issue 23: a second build into the same --out deleted files added in marked folders."""
    out = tmp_path / "b"
    work = earlier_build(out)
    bench = fresh_stage(work / "bench", "edgesmith build bench")
    (bench / "report.md").write_text("old report")
    publish_dir(stage=bench, final=work / "bench")
    assert is_owned(out / "bundle") and is_owned(work / "bench")
    (out / added).write_text("the user's")
    assert f"{out / added} was not written by edgesmith" in refused_build(out)


def test_an_edited_file_in_the_bundle_is_not_replaced(tmp_path):
    out = tmp_path / "b"
    earlier_build(out)
    (out / "bundle" / "model.tflite").write_text("the user's fine-tuned model")
    stage = fresh_stage(out / "bundle", "test")
    (stage / "model.tflite").write_text("new model")
    with pytest.raises(EdgesmithError, match="model.tflite was not written by edgesmith"):
        publish_dir(stage, out / "bundle")
    assert (out / "bundle" / "model.tflite").read_text() == "the user's fine-tuned model"
    assert not (out / "bundle.old").exists()


def test_a_users_file_in_a_finished_step_is_kept(tmp_path):
    step = tmp_path / "work" / "export-abc"
    step.mkdir(parents=True)
    (step / "export.json").write_text("[]")
    cache.write_key(step, "export", "k" * 64, {}, None)
    (step / "notes.md").write_text("the user's")
    with pytest.raises(EdgesmithError, match="notes.md is in the build's work folder"):
        cache.clear(step)
    assert (step / "notes.md").read_text() == "the user's"


def test_a_published_folder_named_like_the_bundle_staging_is_not_removed(tmp_path):
    out = tmp_path / "b"
    earlier_build(out)
    theirs = out / "bundle.partial"
    theirs.mkdir()
    (theirs / "model.tflite").write_text("a bundle someone published under this name")
    seal_owned_dir(theirs)  # edgesmith's, but published, not staging of bundle
    with pytest.raises(EdgesmithError, match="did not write as staging of bundle"):
        fresh_stage(out / "bundle", "test")
    assert (theirs / "model.tflite").exists()
