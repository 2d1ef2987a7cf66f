"""Where training runs: GPU when present, a tf.distribute strategy scope always.

The model is built and fitted inside a strategy scope even on one device (the default strategy),
so MirroredStrategy across GPUs plugs in without touching the training loop.
"""

from __future__ import annotations

import dataclasses

from edgesmith.errors import EdgesmithError

DEVICE_CHOICES = ("auto", "cpu", "gpu")


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    """The decision: which devices to use and which strategy wraps them."""

    strategy: str  # "default" or "mirrored"
    use_gpu: bool
    devices: tuple[str, ...]
    description: str


def plan_devices(requested: str, gpus: list[str]) -> DevicePlan:
    """Decide devices and strategy from the request and the GPUs TensorFlow sees.

    Args:
        requested: ``auto`` (GPU if any, else CPU), ``cpu``, or ``gpu`` (fails without one).
        gpus: names of the visible GPUs, e.g. ``["/physical_device:GPU:0"]``.

    Raises:
        EdgesmithError: for an unknown choice, or ``gpu`` on a machine without one.
    """
    if requested not in DEVICE_CHOICES:
        raise EdgesmithError(
            f"device must be one of {', '.join(DEVICE_CHOICES)}. Received: {requested!r}"
        )
    if requested == "gpu" and not gpus:
        raise EdgesmithError(
            "--device gpu: TensorFlow sees no GPU on this machine (install the NVIDIA driver and "
            "pip install 'edgesmith[gpu]'), or pass --device auto to fall back to the CPU"
        )
    if requested == "cpu" or not gpus:
        why = "requested" if requested == "cpu" else "no GPU found"
        return DevicePlan("default", False, ("CPU",), f"CPU ({why})")
    if len(gpus) == 1:
        return DevicePlan("default", True, tuple(gpus), f"1 GPU ({gpus[0]})")
    return DevicePlan("mirrored", True, tuple(gpus), f"{len(gpus)} GPUs with MirroredStrategy")


def make_strategy(plan: DevicePlan):
    """Create the tf.distribute strategy for a plan (hiding GPUs when the CPU was chosen)."""
    from edgesmith._tensorflow import tf

    if not plan.use_gpu and tf.config.list_physical_devices("GPU"):
        tf.config.set_visible_devices([], "GPU")
    if plan.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def visible_gpus() -> list[str]:
    """Names of the GPUs TensorFlow can use."""
    from edgesmith._tensorflow import tf

    return [device.name for device in tf.config.list_physical_devices("GPU")]
