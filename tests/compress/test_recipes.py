import json

import pytest

from edgesmith.core.errors import EdgesmithError


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ({}, "steps must be a non-empty list"),
        ({"steps": [], "x": 1}, "unknown key(s) x"),
        ({"steps": [{"squeeze": {}}]}, "step 1: unknown technique 'squeeze'"),
        ({"steps": [{"prune": {"sparsity": 1.2}}]}, "step 1 (prune): sparsity must be in"),
        ({"steps": [{"qat": {}}, {"prune": {"sparsity": 0.5}}]}, "step 2 (prune) follows qat"),
        ({"steps": [{"cluster": {"clusters": 1}}]}, "clusters must be a whole number >= 2"),
        ({"steps": [{"prune": {}, "qat": {}}]}, "expected one technique"),
    ],
)
def test_bad_recipes_fail_before_any_work(recipe, message):
    from edgesmith.compress.recipes import parse_recipe

    with pytest.raises(EdgesmithError) as info:
        parse_recipe(recipe)
    assert message in str(info.value)


def test_recipe_chains_steps_each_with_its_artifact(digits_artifact, tmp_path, capsys):
    from edgesmith.app.cli import main
    from edgesmith.core.artifacts import read_artifact

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "steps:\n"
        "  - prune: {structure: channels, sparsity: 0.25, epochs: 1}\n"
        "  - prune: {sparsity: 0.5, epochs: 1}\n"
        "  - qat: {epochs: 1, preserve_sparsity: true}\n"
    )
    code = main(
        [
            "compress",
            "recipe",
            "--from",
            str(digits_artifact),
            "--recipe",
            str(recipe),
            "--out",
            str(tmp_path / "chain"),
            "--quiet",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    paths = out.split()
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["1-prune", "2-prune", "3-qat"]
    first, second, third = (read_artifact(p) for p in paths)
    assert first.manifest.parent == read_artifact(digits_artifact).id
    assert second.manifest.parent == first.id and third.manifest.parent == second.id
    assert first.manifest.technique == "prune-channels"
    assert third.manifest.qat is True
    assert third.metrics.sparsity == pytest.approx(second.metrics.sparsity, abs=1e-3)
    summary = json.loads((tmp_path / "chain" / "recipe.json").read_text())
    assert [s["technique"] for s in summary["steps"]] == ["prune", "prune", "qat"]
