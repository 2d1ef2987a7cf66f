import warnings

import numpy as np
import pytest

import edgesmith.runtime as rt
from edgesmith.runtime.quiet import is_noise


@pytest.mark.parametrize("name", ["float.tflite", "int8.tflite"])
def test_compiled_model_api_gives_the_interpreters_numbers(fixtures, digits, name):
    interpreter = rt.load(fixtures / name, threads=1)
    compiled = rt.load(fixtures / name, threads=1, provider="compiled")
    assert compiled.provider_used == "compiled" and compiled.runtime == "litert"
    assert compiled.input_tensor.scale == interpreter.input_tensor.scale
    assert compiled.input_tensor.zero_point == interpreter.input_tensor.zero_point
    for size in (1, 7, 64):
        a = interpreter.predict(digits.x_eval[:size])
        b = compiled.predict(digits.x_eval[:size])
        assert b.shape == (size, 10)
        assert np.abs(a - b).max() <= 1e-5
    compiled.close()


def test_compiled_gpu_request_reports_where_it_runs(fixtures):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = rt.load(fixtures / "float.tflite", provider="compiled:gpu")
    assert model.provider_used in ("compiled", "compiled:gpu", "compiled:gpu+cpu")
    fell_back = model.provider_used != "compiled:gpu"
    assert fell_back == any(isinstance(w.message, rt.ProviderFallbackWarning) for w in caught)
    assert model.predict(np.zeros((2, 8, 8, 1), np.uint8)).shape == (2, 10)


def test_compiled_model_keeps_the_terminal_clean_through_exit(fixtures, run_python):
    script = (
        "import edgesmith.runtime as rt, numpy as np, sys\n"
        "for _ in range(2):  # the first model is dropped without close()\n"
        "    m = rt.load(sys.argv[1], threads=1, provider='compiled')\n"
        "    m.predict(np.zeros((3, 8, 8, 1), np.uint8))\n"
        "print('ok')\n"
    )
    done = run_python(script, fixtures / "int8.tflite")
    assert done.returncode == 0 and done.stdout.strip() == "ok"
    assert done.stderr == ""


def test_noise_filter_keeps_real_messages():
    assert is_noise("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert is_noise("WARNING: [npu_registry.cc:34] NPU accelerator could not be loaded")
    assert not is_noise("ERROR: failed to prepare FULLY_CONNECTED")
    assert not is_noise("Segmentation fault")
