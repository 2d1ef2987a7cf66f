"""The pytest plugin, run the way users run it: pytest sessions inside pytester.

No verdict here depends on this machine's clock or CPU: the inner sessions time the fixture
models on a fake clock (as ``tests/runtime/test_regression.py`` does), where float.tflite costs
0.4 ms and int8.tflite 1.0 ms by decree, so replacing the first by the second is a 2.5x
slowdown every time, and an unchanged file a ratio of exactly 1.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tomllib

from edgesmith.app.pytest_plugin import baseline_name

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "runtime" / "fixtures"
FAST = [
    "--edgesmith-min-runs",
    "40",
    "--edgesmith-min-seconds",
    "0.1",
    "--edgesmith-warmup-seconds",
    "0",
    "--edgesmith-max-slowdown",
    "1.5",
    "-p",
    "no:cacheprovider",
]
# The inner sessions' conftest: the fake clock's module, then a fixture timing bench on it.
CLOCK_MODULE = ROOT / "tests" / "runtime" / "fake_clock.py"
CLOCK_FIXTURE = f"""

@pytest.fixture(scope="session", autouse=True)
def fake_clock():
    fixtures = {str(FIXTURES)!r}
    cost_ms = {{fixtures + "/int8.tflite": 1.0, fixtures + "/float.tflite": 0.4}}
    with fake_bench_clock(cost_ms) as clock:
        yield clock
"""
TEST = """
from pathlib import Path

def test_model_is_not_slower(edgesmith_bench):
    edgesmith_bench(Path(__file__).parent / "model.tflite")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project: a test that gates model.tflite (float.tflite at first)."""
    pytester.makeconftest(CLOCK_MODULE.read_text() + CLOCK_FIXTURE)
    pytester.makepyfile(test_gate=TEST)
    shutil.copyfile(FIXTURES / "float.tflite", pytester.path / "model.tflite")
    return pytester


def test_the_entry_point_registers_the_plugin():
    """Installing edgesmith is enough: pyproject declares the pytest11 entry point."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"edgesmith": "edgesmith.app.pytest_plugin"}


def test_record_then_pass_unchanged_then_fail_slower(project: pytest.Pytester):
    baselines = project.path / "baselines"
    recorded = project.runpytest_inprocess(
        "--edgesmith-baseline", str(baselines), "--edgesmith-update", *FAST
    )
    recorded.assert_outcomes(passed=1)
    name = baseline_name("test_gate.py::test_model_is_not_slower")
    assert (baselines / f"{name}.json").is_file()
    assert list((baselines / f"{name}.models").glob("*.tflite"))
    recorded.stdout.fnmatch_lines(["*edgesmith gates*", "*test_model_is_not_slower*recorded*"])

    same = project.runpytest_inprocess("--edgesmith-baseline", str(baselines), *FAST)
    same.assert_outcomes(passed=1)
    same.stdout.fnmatch_lines(["*edgesmith gates*", "*model.tflite*PASS*x1.000*ok*"])

    # the slower file replaces the model in place: the gate compares it with the stored original
    shutil.copyfile(FIXTURES / "int8.tflite", project.path / "model.tflite")
    slower = project.runpytest_inprocess("--edgesmith-baseline", str(baselines), *FAST)
    slower.assert_outcomes(failed=1)
    slower.stdout.fnmatch_lines(
        ["*FAIL*model.tflite vs*", "*latency p50 ratio 2.5*regression*", "*FAIL*x2.5*regression*"]
    )

    # the limit is the user's: 3x allows what 1.5x refused
    allowed = project.runpytest_inprocess(
        "--edgesmith-baseline", str(baselines), *FAST, "--edgesmith-max-slowdown", "3"
    )
    allowed.assert_outcomes(passed=1)


def test_without_a_recorded_baseline_the_test_fails_naming_the_fix(project: pytest.Pytester):
    result = project.runpytest_inprocess("--edgesmith-baseline", str(project.path / "none"), *FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no baseline*record it with --edgesmith-update*"])


def test_without_the_baseline_option_the_gate_is_skipped(project: pytest.Pytester):
    result = project.runpytest_inprocess(*FAST, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no --edgesmith-baseline DIR given*"])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--edgesmith-max-slowdown", "0.5"], "*--edgesmith-max-slowdown*>= 1*0.5*"),
        (["--edgesmith-max-slowdown", "fast"], "*--edgesmith-max-slowdown*fast*"),
        (["--edgesmith-measure", "cycles"], "*--edgesmith-measure*cycles*"),
        (["--edgesmith-min-runs", "-3"], "*--edgesmith-min-runs*-3*"),
        (["--edgesmith-update"], "*--edgesmith-update needs --edgesmith-baseline*"),
    ],
)
def test_bad_option_values_are_usage_errors(project: pytest.Pytester, args, match):
    result = project.runpytest_inprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([match])


def test_a_file_as_the_baseline_folder_is_a_usage_error(project: pytest.Pytester):
    (project.path / "file.json").write_text("{}")
    result = project.runpytest_inprocess("--edgesmith-baseline", str(project.path / "file.json"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edgesmith-baseline must be a folder*file.json*"])


@pytest.mark.parametrize(
    ("nodeid", "name"),
    [
        ("tests/test_a.py::test_b[x-1]", "tests_test_a.py_test_b_x-1"),
        ("::", "baseline"),
    ],
)
def test_baseline_names_are_safe_file_names(nodeid, name):
    assert baseline_name(nodeid) == name


def test_accuracy_is_recorded_and_gated_on_the_data_given(project: pytest.Pytester):
    """With ``data=`` the baseline records accuracy and the gate compares it (digits: offline)."""
    project.makepyfile(
        test_gate="""
from pathlib import Path

def test_model_is_not_slower(edgesmith_bench):
    edgesmith_bench(Path(__file__).parent / "model.tflite", data="digits")
"""
    )
    shutil.copyfile(FIXTURES / "int8.tflite", project.path / "model.tflite")
    baselines = project.path / "baselines"
    recorded = project.runpytest_inprocess(
        "--edgesmith-baseline", str(baselines), "--edgesmith-update", *FAST
    )
    recorded.assert_outcomes(passed=1)
    recorded.stdout.fnmatch_lines(["*test_model_is_not_slower*recorded*p50 1.0* ms*%*"])
    same = project.runpytest_inprocess("--edgesmith-baseline", str(baselines), *FAST)
    same.assert_outcomes(passed=1)
    same.stdout.fnmatch_lines(["*PASS*x1.000*ok*% vs *% ok*"])
