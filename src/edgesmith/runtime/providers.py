"""Provider and delegate choice, and the detection of a silent fall-back to the CPU.

Pure functions over names and lists, so the logic is tested on any machine: onnxruntime quietly
runs on the CPU when the CUDA or TensorRT provider is missing or fails to load, and a benchmark
that does not say so reports CPU numbers as GPU numbers.
"""

from __future__ import annotations

import dataclasses

from edgesmith.core.errors import EdgesmithError

ONNX_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
# What each choice falls back through, best first (onnxruntime tries them in list order).
ONNX_CHAINS = {
    "auto": ("tensorrt", "cuda", "cpu"),  # the best this installation has, CPU at worst
    "cpu": ("cpu",),
    "cuda": ("cuda", "cpu"),
    "tensorrt": ("tensorrt", "cuda", "cpu"),
}
TFLITE_CHOICES = ("cpu", "xnnpack", "delegate:PATH", "compiled", "compiled:gpu", "tflm")
GPU_EXTRA_HINT = "pip install onnxruntime-gpu in place of onnxruntime (edgesmith[gpu])"


def short_name(provider: str) -> str:
    """``CUDAExecutionProvider`` -> ``cuda``; unknown names are returned lower-cased."""
    for short, full in ONNX_PROVIDERS.items():
        if provider == full:
            return short
    return provider.removesuffix("ExecutionProvider").lower()


@dataclasses.dataclass(frozen=True)
class OnnxPlan:
    """The providers to hand onnxruntime, and a warning when the request cannot be met."""

    requested: str
    providers: tuple[str, ...]
    warning: str | None


def plan_onnx_providers(requested: str | None, available: list[str]) -> OnnxPlan:
    """Choose onnxruntime providers for a request, given what this installation offers.

    An explicit GPU request (``cuda``, ``tensorrt``) on an installation without that provider
    fails rather than running on the CPU unnoticed; ``auto`` takes the best one present.

    Args:
        requested: ``cpu`` (the default when ``None``), ``cuda``, ``tensorrt`` or ``auto``.
        available: ``onnxruntime.get_available_providers()``.

    Returns:
        The chain to pass (only providers that are installed, so onnxruntime adds no warning of
        its own); ``warning`` is set when ``tensorrt`` runs on CUDA, its own fall-back.

    Raises:
        EdgesmithError: for a provider name edgesmith does not know, or a GPU provider this
            onnxruntime does not have.
    """
    choice = (requested or "cpu").lower()
    if choice not in ONNX_CHAINS:
        raise EdgesmithError(
            f"unknown provider {requested!r} for an .onnx model: expected one of "
            f"{', '.join(ONNX_CHAINS)}"
        )
    chain = tuple(ONNX_PROVIDERS[name] for name in ONNX_CHAINS[choice])
    usable = tuple(p for p in chain if p in available) or ("CPUExecutionProvider",)
    warning = None
    if choice != "auto" and chain[0] not in available:
        installed = ", ".join(short_name(p) for p in available) or "none"
        if usable[0] == "CPUExecutionProvider":
            raise EdgesmithError(
                f"provider {choice} is not in this onnxruntime (it has: {installed}): "
                f"{GPU_EXTRA_HINT}, or pass --provider auto to run on the best one present"
            )
        warning = (
            f"provider {choice} is not in this onnxruntime (it has: {installed}); running on "
            f"{short_name(usable[0])} instead. For {choice}: {GPU_EXTRA_HINT}"
        )
    return OnnxPlan(choice, usable, warning)


def fallback_warning(requested: str, session_providers: list[str]) -> str | None:
    """A warning when the session did not get the requested provider (a silent fall-back).

    onnxruntime drops a provider that fails to initialise (missing CUDA or cuDNN libraries, a
    TensorRT version mismatch) and runs on the next one, with only a log line.

    Args:
        requested: the short name asked for (``cpu``, ``cuda``, ``tensorrt``).
        session_providers: ``session.get_providers()`` of the created session.
    """
    used = short_name(session_providers[0]) if session_providers else "cpu"
    if used == requested or requested == "auto":
        return None
    return (
        f"provider {requested} was requested but onnxruntime runs this model on {used} "
        "(the provider failed to initialise: check its CUDA/cuDNN/TensorRT libraries)"
    )


@dataclasses.dataclass(frozen=True)
class TflitePlan:
    """How to run a .tflite file: the Interpreter or LiteRT's CompiledModel API.

    The Interpreter runs with XNNPACK or without, or hands the graph to an external delegate;
    the CompiledModel runs on the CPU, or on the GPU with the CPU for the rest; ``tflm`` runs
    the file in TFLite Micro's interpreter instead of LiteRT's.
    """

    xnnpack: bool
    delegate: str | None
    compiled: str | None = None  # None (Interpreter), "cpu" or "gpu"
    tflm: bool = False

    @property
    def label(self) -> str:
        """The provider's name: ``xnnpack``, ``cpu``, ``delegate:PATH``, ``compiled[:gpu]``."""
        if self.tflm:
            return "tflm"
        if self.compiled:
            return "compiled" if self.compiled == "cpu" else f"compiled:{self.compiled}"
        if self.delegate:
            return f"delegate:{self.delegate}"
        return "xnnpack" if self.xnnpack else "cpu"


def plan_tflite(provider: str | None, xnnpack: bool = True) -> TflitePlan:
    """Interpret ``provider`` for a .tflite model.

    ``None`` or ``cpu`` keep the ``xnnpack`` flag (XNNPACK is LiteRT's default CPU delegate);
    ``xnnpack`` forces it on; ``delegate:/path/lib.so`` loads an external delegate (GPU, NPU,
    Edge TPU) with XNNPACK off so that the delegate gets the graph; ``compiled`` and
    ``compiled:gpu`` use LiteRT's CompiledModel API instead of the Interpreter; ``tflm`` runs
    TFLite Micro's interpreter (reference kernels, measured arena).

    Raises:
        EdgesmithError: for ``cuda``/``tensorrt`` (onnxruntime's) or an unknown name.
    """
    if provider is None or provider.lower() == "cpu":
        return TflitePlan(xnnpack, None)
    if provider.lower() == "xnnpack":
        return TflitePlan(True, None)
    if provider.lower() in ("compiled", "compiled:cpu"):
        return TflitePlan(True, None, "cpu")
    if provider.lower() == "compiled:gpu":
        return TflitePlan(True, None, "gpu")
    if provider.lower() == "tflm":
        return TflitePlan(False, None, tflm=True)
    if provider.startswith("delegate:"):
        path = provider.partition(":")[2]
        if not path:
            raise EdgesmithError("provider delegate: needs a library path, e.g. delegate:/x.so")
        return TflitePlan(False, path)
    if provider.lower() in ONNX_PROVIDERS:
        raise EdgesmithError(
            f"provider {provider!r} applies to .onnx models; for .tflite use "
            f"{', '.join(TFLITE_CHOICES)}"
        )
    raise EdgesmithError(
        f"unknown provider {provider!r} for a .tflite model: expected {', '.join(TFLITE_CHOICES)}"
    )
