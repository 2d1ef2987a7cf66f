import pytest

from edgesmith.app.cli import main


@pytest.mark.parametrize(
    ("make", "extra", "match"),
    [
        (lambda d, f: str(d / "missing.tflite"), [], "model not found"),
        (lambda d, f: _write(d / "notes.txt", b"hi"), [], "expected a .tflite or .onnx file"),
        (
            lambda d, f: _write(d / "cut.tflite", (f / "int8.tflite").read_bytes()[:2000]),
            [],
            "cut.tflite",
        ),
        (
            lambda d, f: _write(d / "cut.onnx", (f / "raw.onnx").read_bytes()[:2000]),
            [],
            "not a readable ONNX model",
        ),
        (lambda d, f: str(f / "raw.onnx"), ["--provider", "npu"], "unknown provider 'npu'"),
        (lambda d, f: str(f / "int8.tflite"), ["--provider", "cuda"], "applies to .onnx models"),
        (
            lambda d, f: str(f / "int8.tflite"),
            ["--data", "synthetic?shape=16x16x3"],
            "has 16x16x3 images but int8.tflite takes 8x8x1",
        ),
        (lambda d, f: str(f / "int8.tflite"), ["--data", "imagenet"], "unknown dataset 'imagenet'"),
        (lambda d, f: str(f / "int8.tflite"), ["--affinity", "999"], "do not exist"),
        (lambda d, f: str(f / "int8.tflite"), ["--affinity", "a-b"], "--affinity takes CPU"),
    ],
)
def test_bench_bad_input_exits_2_with_one_line(
    tmp_path, fixtures, one_line_error, make, extra, match
):
    path = make(tmp_path, fixtures)
    code = main(["bench", path, "--min-runs", "5", "--min-seconds", "0", "--quiet", *extra])
    assert code == 2
    assert match in one_line_error()


def test_bench_of_a_keras_artifact_says_to_export_first(tmp_path, fixtures, one_line_error):
    import json
    import shutil

    artifact = tmp_path / "keras_artifact"
    shutil.copytree(fixtures / "artifact_tflite", artifact)
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["format"] = "keras"
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    assert main(["bench", str(artifact), "--quiet"]) == 2
    assert "edgesmith export" in one_line_error()


def test_argument_errors_exit_2(fixtures, one_line_error):
    assert main(["bench", str(fixtures / "int8.tflite"), "--threads", "0"]) == 2
    assert "argument --threads" in one_line_error()


def _write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    ("flag", "value"), [("--threads", "100000"), ("--batch", str(10**12)), ("--min-runs", "1e12")]
)
def test_absurd_sizes_are_refused_before_any_work(fixtures, one_line_error, flag, value):
    """A thread count that crashed a runtime, a batch that took 21 GB: one line, exit 2."""
    assert main(["bench", str(fixtures / "int8.tflite"), flag, value]) == 2
    assert f"argument {flag}" in one_line_error()


def test_a_baseline_asking_an_absurd_batch_is_refused(fixtures, tmp_path, one_line_error):
    import json

    from edgesmith.runtime.bench import BenchConfig, benchmark
    from edgesmith.runtime.timing import TimingPlan

    plan = TimingPlan(min_runs=3, min_seconds=0, warmup_runs=1, warmup_seconds=0)
    document = benchmark([fixtures / "int8.tflite"], config=BenchConfig(timing=plan)).document
    record = document.to_dict()
    record["results"][0]["batch"] = 10**12
    baseline = tmp_path / "base.json"
    baseline.write_text(json.dumps(record))
    assert main(["check", str(fixtures / "int8.tflite"), "--baseline", str(baseline)]) == 2
    assert "batch must be in [1, 4096]" in one_line_error()


def test_a_fifo_or_a_device_as_model_is_refused_at_once(tmp_path, one_line_error):
    import os

    fifo = tmp_path / "m.tflite"
    os.mkfifo(fifo)  # reading it would block forever
    device = tmp_path / "zero.onnx"
    device.symlink_to("/dev/zero")  # reading it would never end
    for path, kind in ((fifo, "FIFO"), (device, "character device")):
        assert main(["bench", str(path)]) == 2
        assert f"is a {kind}, not a regular file" in one_line_error()
