"""Where training runs: GPU when present, a tf.distribute strategy scope always.

The model is built and fitted inside a strategy scope even on one device (the default strategy),
so MirroredStrategy across GPUs and MultiWorkerMirroredStrategy across machines plug in without
touching the training loop. ``plan_input`` decides where the input pipeline's work happens for a
device plan; both decisions are pure functions of their arguments, so they are tested here without
a GPU.
"""

from __future__ import annotations

import dataclasses
import json

from edgesmith.core.errors import EdgesmithError
from edgesmith.tfkeras import DEVICE_BUFFER

ACCELERATOR_CHOICES = ("auto", "cpu", "gpu")
STRATEGY_CHOICES = ("auto", "multiworker")
AUGMENT_ON_CHOICES = ("auto", "host", "device")


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    """The decision: which devices to use and which strategy wraps them.

    Attributes:
        strategy: ``default``, ``mirrored`` or ``multiworker``.
        use_gpu: whether GPUs stay visible.
        devices: the local devices used.
        description: one line for the progress report.
        worker_index: this process's index among the workers (0 = chief).
        num_workers: how many workers train together.
    """

    strategy: str
    use_gpu: bool
    devices: tuple[str, ...]
    description: str
    worker_index: int = 0
    num_workers: int = 1

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the artifact (worker 0, as TensorFlow's convention)."""
        return self.worker_index == 0


def parse_tf_config(text: str | None) -> tuple[int, int]:
    """Validate ``TF_CONFIG`` for multi-worker training.

    Returns:
        ``(worker_index, num_workers)``.

    Raises:
        EdgesmithError: naming what is missing or wrong, with the expected shape.
    """
    shape = (
        'expected TF_CONFIG like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    if not text:
        raise EdgesmithError(f"--strategy multiworker needs TF_CONFIG in the environment; {shape}")
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise EdgesmithError(
            f"TF_CONFIG is malformed ({type(exc).__name__}: {exc}); {shape}"
        ) from None
    if not isinstance(workers, list) or not workers or not all(isinstance(w, str) for w in workers):
        raise EdgesmithError(f"TF_CONFIG cluster.worker must list host:port strings; {shape}")
    index = task.get("index") if isinstance(task, dict) else None
    if task.get("type") != "worker" or not isinstance(index, int) or not 0 <= index < len(workers):
        raise EdgesmithError(
            f"TF_CONFIG task must be a worker with an index below {len(workers)}. "
            f"Received: {task!r}"
        )
    return index, len(workers)


def plan_devices(
    requested: str, gpus: list[str], *, strategy: str = "auto", tf_config: str | None = None
) -> DevicePlan:
    """Decide devices and strategy from the request and the GPUs TensorFlow sees.

    Args:
        requested: ``auto`` (GPU if any, else CPU), ``cpu``, or ``gpu`` (fails without one).
        gpus: names of the visible GPUs, e.g. ``["/physical_device:GPU:0"]``.
        strategy: ``auto`` (one machine: mirrored across several GPUs) or ``multiworker``
            (several machines, described by ``TF_CONFIG``).
        tf_config: the ``TF_CONFIG`` text, for ``multiworker``.

    Raises:
        EdgesmithError: for an unknown choice, ``gpu`` on a machine without one, or a missing
            or malformed ``TF_CONFIG``.
    """
    if requested not in ACCELERATOR_CHOICES:
        raise EdgesmithError(
            f"accelerator must be one of {', '.join(ACCELERATOR_CHOICES)}. Received: {requested!r}"
        )
    if strategy not in STRATEGY_CHOICES:
        raise EdgesmithError(
            f"strategy must be one of {', '.join(STRATEGY_CHOICES)}. Received: {strategy!r}"
        )
    if requested == "gpu" and not gpus:
        raise EdgesmithError(
            "--accelerator gpu: TensorFlow sees no GPU on this machine (install the NVIDIA driver "
            "and pip install 'edgesmith[gpu]'), or pass --accelerator auto to fall back to the CPU"
        )
    use_gpu = requested != "cpu" and bool(gpus)
    local = tuple(gpus) if use_gpu else ("CPU",)
    if strategy == "multiworker":
        index, count = parse_tf_config(tf_config)
        return DevicePlan(
            "multiworker",
            use_gpu,
            local,
            f"worker {index} of {count} (MultiWorkerMirroredStrategy) on {', '.join(local)}",
            index,
            count,
        )
    if not use_gpu:
        why = "requested" if requested == "cpu" else "no GPU found"
        return DevicePlan("default", False, local, f"CPU ({why})")
    if len(gpus) == 1:
        return DevicePlan("default", True, local, f"1 GPU ({gpus[0]})")
    return DevicePlan("mirrored", True, local, f"{len(gpus)} GPUs with MirroredStrategy")


def make_strategy(plan: DevicePlan):
    """Create the tf.distribute strategy for a plan (hiding GPUs when the CPU was chosen)."""
    from edgesmith.tfkeras.backend import tf

    if not plan.use_gpu and tf.config.list_physical_devices("GPU"):
        tf.config.set_visible_devices([], "GPU")
    if plan.strategy == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if plan.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def visible_gpus() -> list[str]:
    """Names of the GPUs TensorFlow can use."""
    from edgesmith.tfkeras.backend import tf

    return [device.name for device in tf.config.list_physical_devices("GPU")]


@dataclasses.dataclass(frozen=True)
class InputPlan:
    """Where the input pipeline works: augmentation placement and copies to the accelerator.

    Attributes:
        augment_on: ``host`` (tf.data normalises and augments on the CPU) or ``device`` (the
            training step does, on the device that trains: the GPU, or the CPU without one).
        augment_device: ``CPU`` or ``GPU``: where normalisation and augmentation really run.
        prefetch_to_device: whether batches reach the accelerator ahead of the step using them.
        prefetch_target: the device tf.data itself prefetches to (one GPU under the default
            strategy); None when nothing is copied or when tf.distribute does the copying.
        fetch: how batches reach the step, in words (for the manifest).
    """

    augment_on: str
    augment_device: str
    prefetch_to_device: bool
    prefetch_target: str | None
    fetch: str

    def to_dict(self) -> dict:
        """The manifest's ``input_pipeline`` record."""
        return dataclasses.asdict(self)

    def describe(self, augment: tuple[str, ...]) -> str:
        """One progress line saying where augmentation runs and how batches travel."""
        what = f"{','.join(augment)} augmentation" if augment else "normalisation (no augmentation)"
        where = (
            "in tf.data on the host CPU"
            if self.augment_on == "host"
            else f"in the training step on the {self.augment_device}"
        )
        copy = f"; {self.fetch}" if self.prefetch_to_device else "; batches stay on the host"
        return f"input: {what} {where} (augment_on {self.augment_on}){copy}"


def plan_input(plan: DevicePlan, augment_on: str = "auto") -> InputPlan:
    """Decide where augmentation runs and whether batches are copied to the device ahead of time.

    ``auto`` augments on the device when training on a GPU (the host's few cores would starve
    it) and on the host otherwise. ``device`` is not a device request: without a GPU the training
    step, and so the augmentation, runs on the CPU, which the plan says.

    Copies to the accelerator: under the default strategy on one GPU, tf.data's
    ``prefetch_to_device``; under MirroredStrategy and MultiWorkerMirroredStrategy, Keras' ``fit``
    already distributes the dataset with ``strategy.experimental_distribute_dataset``, whose
    default ``InputOptions`` (``experimental_fetch_to_device=True``) prefetch each replica's
    batch to its device through a multi-device iterator; the dataset is passed to ``fit`` as it
    is, neither distributed a second time nor given a ``prefetch_to_device`` of its own.

    Raises:
        EdgesmithError: for an unknown ``augment_on``.
    """
    if augment_on not in AUGMENT_ON_CHOICES:
        raise EdgesmithError(
            f"augment_on must be one of {', '.join(AUGMENT_ON_CHOICES)}. Received: {augment_on!r}"
        )
    place = augment_on if augment_on != "auto" else ("device" if plan.use_gpu else "host")
    where = "GPU" if place == "device" and plan.use_gpu else "CPU"
    if not plan.use_gpu:
        return InputPlan(place, where, False, None, "on the host")
    if plan.strategy == "default":
        target = logical_device(plan.devices[0])
        fetch = f"tf.data prefetch_to_device({target}), {DEVICE_BUFFER} batches ahead"
        return InputPlan(place, where, True, target, fetch)
    return InputPlan(
        place,
        where,
        True,
        None,
        f"{plan.strategy} strategy fetches each replica's batch to its GPU (Keras fit)",
    )


def logical_device(physical: str) -> str:
    """``/physical_device:GPU:0`` -> ``/device:GPU:0`` (the same device when none is split)."""
    return physical.replace("/physical_device:", "/device:", 1)
