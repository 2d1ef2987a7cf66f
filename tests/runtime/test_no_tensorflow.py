import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

SCRIPT = """
import json, sys
import edgesmith.runtime as rt
import edgesmith.runtime.commands
from edgesmith.app.cli import build_parser
build_parser()
from edgesmith.runtime import bench, regression, report, plots, accuracy
model = rt.load(sys.argv[1], threads=1)
out = model.predict(__import__("numpy").zeros((2, 8, 8, 1), dtype="uint8"))
onnx = rt.load(sys.argv[2], threads=1)
onnx.predict(__import__("numpy").zeros((2, 8, 8, 1), dtype="uint8"))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
print(json.dumps({"heavy": heavy, "shape": list(out.shape)}))
"""


def test_runtime_and_its_cli_never_import_tensorflow(run_python):
    result = run_python(SCRIPT, FIXTURES / "int8.tflite", FIXTURES / "raw.onnx")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["shape"] == [2, 10]


def test_litert_start_up_line_is_kept_off_stderr(run_python):
    script = (
        "import edgesmith.runtime as rt, numpy as np, sys\n"
        "m = rt.load(sys.argv[1], threads=1)\n"
        "m.predict(np.zeros((3, 8, 8, 1), np.uint8))\n"
    )
    result = run_python(script, FIXTURES / "float.tflite")
    assert result.returncode == 0, result.stderr
    assert "XNNPACK" not in result.stderr
    assert "Created TensorFlow Lite" not in result.stdout + result.stderr
