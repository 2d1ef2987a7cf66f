"""Import Keras 3 on the backend a run asked for, and describe the devices it will train on.

Keras 3 reads ``KERAS_BACKEND`` once, at its first import, so the backend is set here before
``import keras``, and a process that already holds Keras 3 on another backend, or tf_keras'
TensorFlow (``edgesmith.tfkeras.backend``), is refused with one line instead of training on the
wrong one.
Nothing here imports TensorFlow unless the backend is ``tensorflow``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from types import ModuleType

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.versions import installed_versions

KERAS3_BACKENDS = ("jax", "torch", "tensorflow")
VERSION_PACKAGES = ("keras", "jax", "jaxlib", "torch", "tensorflow", "optree", "namex")


@dataclasses.dataclass(frozen=True)
class Keras3Devices:
    """What trains: the backend, its devices and whether they are GPUs.

    Attributes:
        backend: ``jax``, ``torch`` or ``tensorflow``.
        kind: ``gpu`` or ``cpu``.
        devices: one name per device used (e.g. ``gpu:0 NVIDIA H200``).
    """

    backend: str
    kind: str
    devices: tuple[str, ...]

    @property
    def description(self) -> str:
        """One line for the progress report."""
        names = sorted(set(d.split(" ", 1)[-1] for d in self.devices))
        return (
            f"Keras 3 on {self.backend}, {len(self.devices)} {self.kind.upper()}(s): "
            + ", ".join(names)
        )


def import_keras(backend: str, accelerator: str = "auto") -> ModuleType:
    """Import Keras 3 with ``backend``, hiding GPUs first when ``accelerator`` is ``cpu``.

    Raises:
        EdgesmithError: for an unknown backend, Keras 3 already imported with another backend,
            tf_keras' TensorFlow already loaded in this process, or Keras 3 not installed.
    """
    if backend not in KERAS3_BACKENDS:
        raise EdgesmithError(
            f"backend must be one of {', '.join(KERAS3_BACKENDS)}. Received: {backend!r}"
        )
    if "edgesmith.tfkeras.backend" in sys.modules:
        raise EdgesmithError(
            f"this process already loaded tf_keras; run the Keras 3 ({backend}) training in a "
            "fresh process (e.g. the edgesmith train command)"
        )
    loaded = sys.modules.get("keras")
    if loaded is not None:
        current = loaded.backend.backend()
        if current != backend:
            raise EdgesmithError(
                f"Keras 3 is already imported with backend {current!r} in this process; "
                f"--backend {backend} needs a fresh process"
            )
        return loaded
    os.environ["KERAS_BACKEND"] = backend
    if accelerator == "cpu":
        if backend == "jax":
            os.environ["JAX_PLATFORMS"] = "cpu"
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        import keras
    except ImportError as exc:
        extra = {"jax": "train-jax", "torch": "train-torch"}.get(backend, "train")
        raise EdgesmithError(
            f"--backend {backend} needs Keras 3 and {backend} (pip install "
            f"'edgesmith[{extra}]'): {exc}"
        ) from None
    if not hasattr(keras, "distribution") or keras.backend.backend() != backend:
        raise EdgesmithError(
            f"the installed keras is not Keras 3 on {backend} (found {keras.__version__})"
        )
    if backend != "tensorflow":
        _keep_tensorflow_out()
    return keras


def _keep_tensorflow_out() -> None:
    """Stop Keras 3 from importing TensorFlow on its own when another backend trains.

    Keras imports TensorFlow wherever it is installed (``set_random_seed`` seeds it, data
    adapters probe it): seconds of import, and on a GPU machine TensorFlow would claim GPU memory
    beside JAX or PyTorch. Nothing of this trainer uses TensorFlow, so Keras is told it is absent
    (Keras' private ``module_utils.tensorflow`` flag; where a Keras release lacks it, nothing
    changes).
    """
    if "tensorflow" in sys.modules:
        return
    try:
        from keras.src.utils import module_utils
    except ImportError:
        return
    lazy = getattr(module_utils, "tensorflow", None)
    if lazy is not None and hasattr(lazy, "_available"):
        lazy._available = False


def find_devices(backend: str, accelerator: str) -> Keras3Devices:
    """The devices Keras 3 trains on: all local GPUs when present (``accelerator`` allowing).

    Raises:
        EdgesmithError: for ``accelerator="gpu"`` when the backend sees no GPU.
    """
    gpus = [] if accelerator == "cpu" else _gpus(backend)
    if accelerator == "gpu" and not gpus:
        raise EdgesmithError(
            f"--accelerator gpu: the {backend} backend sees no GPU (is its CUDA build installed "
            "and a driver present?)"
        )
    if gpus:
        return Keras3Devices(backend, "gpu", tuple(gpus))
    return Keras3Devices(backend, "cpu", ("cpu:0 CPU",))


def _gpus(backend: str) -> list[str]:
    if backend == "jax":
        import jax

        try:
            return [f"gpu:{d.id} {d.device_kind}" for d in jax.devices("gpu")]
        except RuntimeError:  # no GPU platform in this jaxlib
            return []
    if backend == "torch":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [f"gpu:{i} {torch.cuda.get_device_name(i)}" for i in range(count)]
    import tensorflow as tf

    return [f"gpu:{i} {d.name}" for i, d in enumerate(tf.config.list_physical_devices("GPU"))]


def use_all_gpus(keras: ModuleType, devices: Keras3Devices, batch_size: int) -> bool:
    """Spread each batch over all local GPUs with ``keras.distribution.DataParallel`` (JAX).

    Returns:
        Whether data parallelism was switched on (more than one GPU on the JAX backend).

    Raises:
        EdgesmithError: when the batch does not split evenly over the GPUs.
    """
    count = len(devices.devices)
    if devices.kind != "gpu" or count < 2 or devices.backend != "jax":
        return False
    if batch_size % count:
        raise EdgesmithError(
            f"batch_size {batch_size} does not split over {count} GPUs; use a multiple of {count}"
        )
    gpus = keras.distribution.list_devices("gpu")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=gpus))
    return True


def keras3_versions() -> dict[str, str]:
    """Versions of Keras 3 and its backends that are installed (package metadata, no imports)."""
    return installed_versions(VERSION_PACKAGES)
