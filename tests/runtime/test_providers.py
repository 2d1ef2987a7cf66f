import warnings

import pytest

import edgesmith.runtime as rt
from edgesmith.core.errors import EdgesmithError
from edgesmith.runtime.providers import (
    fallback_warning,
    plan_onnx_providers,
    plan_tflite,
    short_name,
)

CPU_ONLY = ["AzureExecutionProvider", "CPUExecutionProvider"]
GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_cpu_is_the_default_and_needs_no_warning():
    plan = plan_onnx_providers(None, CPU_ONLY)
    assert plan.providers == ("CPUExecutionProvider",) and plan.warning is None


def test_gpu_request_on_a_gpu_build_chains_down_to_cpu():
    assert plan_onnx_providers("cuda", GPU_BUILD).providers == (
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    )
    plan = plan_onnx_providers("TensorRT", GPU_BUILD)
    assert plan.providers == tuple(GPU_BUILD) and plan.warning is None


def test_gpu_request_on_a_cpu_build_fails_with_the_fix_named():
    with pytest.raises(EdgesmithError, match="not in this onnxruntime.*onnxruntime-gpu.*auto"):
        plan_onnx_providers("cuda", CPU_ONLY)
    auto = plan_onnx_providers("auto", CPU_ONLY)
    assert auto.providers == ("CPUExecutionProvider",) and auto.warning is None
    assert plan_onnx_providers("auto", GPU_BUILD).providers == tuple(GPU_BUILD)
    trt = plan_onnx_providers("tensorrt", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert trt.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert "running on cuda" in trt.warning


def test_unknown_provider_is_refused():
    with pytest.raises(EdgesmithError, match="unknown provider 'npu'.*auto, cpu, cuda, tensorrt"):
        plan_onnx_providers("npu", CPU_ONLY)


def test_silent_fallback_after_session_creation_is_detected():
    assert fallback_warning("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"]) is None
    message = fallback_warning("cuda", ["CPUExecutionProvider"])
    assert "runs this model on cpu" in message
    assert fallback_warning("cpu", ["CPUExecutionProvider"]) is None
    assert fallback_warning("auto", ["CPUExecutionProvider"]) is None
    assert short_name("TensorrtExecutionProvider") == "tensorrt"
    assert short_name("OpenVINOExecutionProvider") == "openvino"


def test_tflite_choices():
    assert plan_tflite(None).label == "xnnpack"
    assert plan_tflite("cpu", xnnpack=False).label == "cpu"
    assert plan_tflite("xnnpack", xnnpack=False).label == "xnnpack"
    delegate = plan_tflite("delegate:/opt/libedgetpu.so")
    assert delegate.delegate == "/opt/libedgetpu.so" and not delegate.xnnpack
    assert plan_tflite("compiled").label == "compiled"
    assert plan_tflite("compiled:gpu").label == "compiled:gpu"
    with pytest.raises(EdgesmithError, match="applies to .onnx models"):
        plan_tflite("cuda")
    with pytest.raises(EdgesmithError, match="unknown provider 'gpu'"):
        plan_tflite("gpu")
    with pytest.raises(EdgesmithError, match="needs a library path"):
        plan_tflite("delegate:")


def test_requesting_cuda_here_reports_where_it_really_runs(fixtures):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA: the fallback path is not reachable")
    with pytest.raises(EdgesmithError, match="provider cuda is not in this onnxruntime"):
        rt.load(fixtures / "raw.onnx", provider="cuda")
    model = rt.load(fixtures / "raw.onnx", provider="auto")
    assert model.provider_used == "cpu"


def test_a_missing_delegate_library_is_a_clear_error(fixtures, tmp_path):
    with pytest.raises(EdgesmithError, match="cannot load the delegate"):
        rt.load(fixtures / "float.tflite", provider=f"delegate:{tmp_path / 'nope.so'}")


def test_cpu_provider_gives_no_warning(fixtures):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rt.load(fixtures / "raw.onnx", provider="cpu").provider_used == "cpu"
        assert rt.load(fixtures / "float.tflite", provider="cpu").provider_used == "xnnpack"


def test_a_library_that_is_not_a_delegate_is_refused(fixtures):
    import ctypes.util

    libm = ctypes.util.find_library("m")
    if libm is None:
        pytest.skip("no libm to stand in for a foreign shared library")
    with pytest.raises(EdgesmithError, match="not a TFLite external delegate"):
        rt.load(fixtures / "float.tflite", provider=f"delegate:{libm}")
