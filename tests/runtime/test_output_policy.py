"""bench and check never write over a user's file, or through a link, unless --overwrite."""

import pytest

from edgesmith.app.cli import main

FAST = ["--min-runs", "5", "--min-seconds", "0", "--warmup-runs", "1", "--warmup-seconds", "0"]


def bench(fixtures, *extra):
    return main(["bench", str(fixtures / "int8.tflite"), *FAST, "--quiet", *extra])


def test_a_users_report_survives_and_overwrite_replaces_it(fixtures, tmp_path, capsys):
    notes = tmp_path / "notes.md"
    notes.write_text("mine\n")
    assert bench(fixtures, "--report", str(notes)) == 2
    err = capsys.readouterr().err
    assert "--report" in err and "did not write" in err and err.count("\n") == 1
    assert notes.read_text() == "mine\n"
    assert bench(fixtures, "--report", str(notes), "--overwrite") == 0
    assert notes.read_text().startswith("# edgesmith bench")


def test_its_own_outputs_are_replaced_on_a_rerun(fixtures, tmp_path):
    out = tmp_path / "bench.json"
    assert bench(fixtures, "--json-out", str(out)) == 0
    assert bench(fixtures, "--json-out", str(out)) == 0  # ours, unchanged: replaced
    out.write_text(out.read_text() + " ")  # edited by the user since: no longer ours
    assert bench(fixtures, "--json-out", str(out)) == 2


def test_no_write_follows_a_link(fixtures, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(elsewhere)
    assert bench(fixtures, "--json-out", str(link), "--overwrite") == 2
    assert "is a folder or a link" in capsys.readouterr().err
    assert elsewhere.read_text() == "{}" and link.is_symlink()


def test_check_json_out_keeps_a_users_file(fixtures, tmp_path):
    baseline = tmp_path / "base.json"
    assert bench(fixtures, "--json-out", str(baseline)) == 0
    verdicts = tmp_path / "verdicts.json"
    verdicts.write_text("mine")
    args = ["check", str(fixtures / "int8.tflite"), "--baseline", str(baseline), *FAST[:4]]
    assert main([*args, "--no-accuracy", "--json-out", str(verdicts), "--quiet"]) == 2
    assert verdicts.read_text() == "mine"


def test_nothing_is_written_inside_an_artifact(fixtures, tmp_path, capsys):
    """An artifact folder is edgesmith's, but only its stage writes it: no report lands in it."""
    artifact = tmp_path / "r8"
    artifact.mkdir()
    manifest = artifact / "manifest.json"
    manifest.write_text("{}")
    for flag in ("--report", "--json-out"):
        assert bench(fixtures, flag, str(manifest), "--overwrite") == 2
        assert "inside the artifact" in capsys.readouterr().err
    assert manifest.read_text() == "{}"


def test_plots_of_an_emulated_bench_are_refused_before_any_work(tmp_path):
    from edgesmith.core.errors import EdgesmithError
    from edgesmith.runtime.bench_run import claim_outputs

    with pytest.raises(EdgesmithError, match="--plots does not apply with --emulate"):
        claim_outputs(plots_dir=str(tmp_path / "plots"), emulate="aarch64")
    assert not (tmp_path / "plots").exists()
    claim_outputs(plots_dir=str(tmp_path / "plots"))  # on this machine: fine
