"""Property-based: random and hostile input files end in success or a one-line error, never a crash.

Each loader that reads something a user may have downloaded (artifact manifests, bench baselines,
device profiles, data specs and npz files, technique configs and recipes, model files) is fed
valid documents with fields replaced by random JSON, and plain random documents. The only
acceptable outcomes are success or :class:`EdgesmithError` (through the CLI: exit 0, 1 or 2);
anything else (exit 3, a traceback) is a bug. The example budget is fixed and derandomised, so
the run is the same on every machine and stays well under 20 seconds.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edgesmith.app.cli import main
from edgesmith.core.artifacts import MANIFEST_NAME, read_artifact
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import DatasetRecord, InputRecord, Metrics
from edgesmith.core.normalization import Normalization

FIXTURES = Path(__file__).resolve().parents[1] / "runtime" / "fixtures"
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# JSON values, hostile ones included: huge and negative numbers, NaN/inf, odd strings, nesting.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", ".", "..", "../x", "/etc/passwd", "a\\b", "\0", "x" * 300, "é"]),
    st.text(max_size=12),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node, prefix=()):
    """Every key path in a nested dict/list document."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated(draw, document):
    """``document`` with one to three of its values replaced by random JSON (or removed)."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(document) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
    return document


def documents(valid):
    """Mostly mutations of a valid document, sometimes an arbitrary JSON value."""
    return st.one_of(mutated(valid), mutated(valid), JSON)


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    assert code in (0, 1, 2), f"exit {code} for {argv}:\n{err.getvalue()[-2000:]}"
    if code:
        assert "Traceback" not in err.getvalue()
    return code


def only_clean_errors(call, *args, **kwargs):
    """Run a loader: success or EdgesmithError; anything else fails the test."""
    try:
        return call(*args, **kwargs)
    except EdgesmithError as exc:
        assert str(exc), "an error must say what is wrong"
        return None


def _dump_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, allow_nan=True), encoding="utf-8")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def valid_artifact(workdir, write_artifact):
    return write_artifact(
        workdir / "artifact",
        config={"epochs": 2},
        input_spec=InputRecord(shape=(8, 8, 1), dtype="float32", normalization=Normalization()),
        dataset=DatasetRecord(spec="digits", fingerprint="f" * 64, num_train=2, num_eval=2),
        metrics=Metrics(accuracy=0.5, num_eval=2, params=10, macs=100),
    ).path


def test_manifests_never_crash_info_or_readers(valid_artifact, workdir):
    base = json.loads((valid_artifact / MANIFEST_NAME).read_text())
    target = workdir / "manifests"
    target.mkdir()
    (target / "model.bin").write_bytes(b"weights")

    @SETTINGS
    @given(documents(base))
    def check(manifest):
        _dump_json(target / MANIFEST_NAME, manifest)
        run_cli(["info", str(target)])
        run_cli(["info", str(target), "--no-verify", "--json"])
        artifact = only_clean_errors(read_artifact, target, verify=False)
        if artifact is not None:  # the typed accessors hold up on any accepted manifest
            for name in ("id", "format", "model_path", "labels", "parent", "kind", "is_qat"):
                getattr(artifact, name)
            only_clean_errors(lambda: artifact.normalization)

    check()


@pytest.fixture(scope="module")
def baseline(workdir):
    out = workdir / "bench" / "base.json"
    out.parent.mkdir()
    model = FIXTURES / "float.tflite"
    if not model.is_file():
        pytest.skip("the runtime fixtures are not present")
    code = run_cli(
        ["bench", str(model), "--json-out", str(out), "--min-runs", "1", "--min-seconds", "0.01"]
        + ["--quiet"]
    )
    assert code == 0
    return out


def test_baselines_end_in_a_verdict_or_exit_2(baseline):
    from edgesmith.runtime import regression

    base = json.loads(baseline.read_text())
    hostile = baseline.with_name("hostile.json")
    fast = dataclasses.replace(regression.CHECK_TIMING, warmup_runs=0, warmup_seconds=0.0)
    argv = [str(FIXTURES / "float.tflite"), "--baseline", str(hostile), "--no-accuracy"]
    argv += ["--min-runs", "1", "--min-seconds", "0.01", "--quiet"]

    @settings(SETTINGS, max_examples=25)
    @given(documents(base))
    def check(document):
        _dump_json(hostile, document)
        with mock.patch.object(regression, "CHECK_TIMING", fast):
            run_cli(["check", *argv])

    check()


def test_device_profiles_load_or_exit_2(workdir):
    from edgesmith.core.profiles import load_profile

    shipped = yaml.safe_load(
        (Path(__file__).parents[2] / "src" / "edgesmith" / "devices" / "cpu-x86.yaml").read_text()
    )
    path = workdir / "profile.yaml"

    @SETTINGS
    @given(documents(shipped))
    def check(profile):
        path.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
        only_clean_errors(load_profile, path)

    check()
    path.write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(EdgesmithError):
        load_profile(path)


SPEC_WORDS = st.sampled_from(
    ["digits", "synthetic", "npz:", "folder:", "cifar10", "x", "", "?", "&", "=", ":"]
)
OPTION_KEYS = st.sampled_from(
    ["train", "eval", "classes", "shape", "n", "seed", "size", "split", "grayscale", "zz"]
)
OPTION_VALUES = st.one_of(
    st.sampled_from(
        ["0", "1", "2", "-1", "abc", "nan", "inf", "0.5", "8x8", "2x2x3", "²", "9" * 30]
    ),
    st.text(max_size=6),
)


@st.composite
def data_specs(draw):
    head = draw(SPEC_WORDS)
    if head.endswith(":"):
        head += draw(st.sampled_from(["/nonexistent", "", "a\0b", "."]))
    options = draw(st.lists(st.tuples(OPTION_KEYS, OPTION_VALUES), max_size=4))
    query = "&".join(f"{k}={v}" for k, v in options)
    return head + ("?" + query if query or draw(st.booleans()) else "")


def test_data_specs_parse_or_exit_2():
    from edgesmith.core.datasets import load_dataset, parse_spec

    @SETTINGS
    @given(st.one_of(data_specs(), st.text(max_size=30)))
    def check(spec):
        parsed = only_clean_errors(parse_spec, spec)
        if parsed is not None and parsed.kind == "synthetic":
            only_clean_errors(load_dataset, spec)  # bounded: a huge request is refused

    check()


@st.composite
def npz_arrays(draw):
    dtype = draw(st.sampled_from([np.uint8, np.float32, np.float64, np.int64, np.bool_]))
    shape = draw(st.lists(st.integers(0, 4), min_size=1, max_size=5))
    fill = draw(st.sampled_from([0, 1, 0.5, 255, 300, -1, np.nan, np.inf]))
    with np.errstate(all="ignore"):
        x = np.full(shape, fill).astype(dtype)
    count = shape[0]
    labels = draw(
        st.lists(
            st.one_of(st.integers(-5, 2**62), st.floats(allow_nan=True)),
            min_size=max(count - 1, 0),
            max_size=count + 1,
        )
    )
    return x, np.asarray(labels)


def test_npz_datasets_load_or_exit_2(workdir):
    from edgesmith.core.datasets import load_dataset

    path = workdir / "data.npz"

    @SETTINGS
    @given(npz_arrays(), npz_arrays())
    def check(train, test):
        np.savez(path, x_train=train[0], y_train=train[1], x_test=test[0], y_test=test[1])
        only_clean_errors(load_dataset, f"npz:{path}")

    check()


def test_technique_configs_and_recipes_validate_or_exit_2(workdir):
    from edgesmith.compress import config as cc
    from edgesmith.compress.recipes import parse_recipe
    from edgesmith.train import TrainConfig

    classes = [
        cc.PruneConfig,
        cc.QatConfig,
        cc.DistillConfig,
        cc.ClusterConfig,
        cc.SensitivityConfig,
        cc.AutotuneConfig,
        TrainConfig,
    ]
    required = {"PruneConfig": {"sparsity": 0.5}, "DistillConfig": {"student": "resnet8"}}
    defaults = {
        cls.__name__: {
            k: v
            for k, v in cls(**required.get(cls.__name__, {})).to_dict().items()
            if v is not None
        }
        for cls in classes
    }
    recipe = {"steps": [{"prune": {"sparsity": 0.5}}, {"qat": {"epochs": 1}}, {"quantize": {}}]}
    path = workdir / "recipe.yaml"

    @settings(SETTINGS, max_examples=100)
    @given(st.sampled_from(classes), st.data())
    @example(cc.AutotuneConfig, {"attempts": [1]})  # crashed: 'int' object has no .strip
    @example(cc.AutotuneConfig, {"attempts": "float", "max_float_layers": 0})  # max([]) later
    @example(cc.PruneConfig, {1: 2, "sparsity": 0.5})  # crashed: sorting int and str keys
    def check(cls, data):
        values = data if isinstance(data, dict) else data.draw(documents(defaults[cls.__name__]))
        only_clean_errors(cls.from_dict, values)
        document = recipe if isinstance(data, dict) else data.draw(documents(recipe))
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        only_clean_errors(parse_recipe, path)

    check()
    with pytest.raises(EdgesmithError, match="would try nothing"):
        cc.AutotuneConfig.from_dict({"attempts": "float", "max_float_layers": 0})
    with pytest.raises(EdgesmithError, match="unknown key"):
        parse_recipe({1: 2, "steps": [{"qat": {}}]})


def test_model_configs_are_inspected_without_crashing(workdir):
    from edgesmith.tfkeras.model_safety import check_model_file

    config = {
        "module": "keras",
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                {"module": "keras.layers", "class_name": "InputLayer", "config": {"name": "in"}},
                {"class_name": "Dense", "config": {"name": "d", "units": 2}},
            ],
        },
    }
    path = workdir / "m.keras"

    @SETTINGS
    @given(documents(config), st.one_of(st.sampled_from(["\u00b2.1", "9" * 5000]), st.text()))
    def check(document, version):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", json.dumps(document, allow_nan=True))
            archive.writestr("metadata.json", json.dumps({"keras_version": version}))
        only_clean_errors(check_model_file, path)

    check()
