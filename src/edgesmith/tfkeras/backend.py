"""The one place TensorFlow is imported: Keras 2 (tf_keras) chosen explicitly, log noise silenced.

tfmot works only on tf_keras models, and importing tfmot flips ``TF_USE_LEGACY_KERAS`` silently;
so the choice is made here, before TensorFlow is first imported, and every TensorFlow user in
edgesmith imports ``tf`` and ``keras`` from this module. The core and the runtime never import it.
"""

from __future__ import annotations

import os
import tempfile

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.quiet import capture_fd

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "edgesmith-keras"))


def quiet_native_stderr():
    """Silence what TensorFlow's C++ code writes to fd 2 (absl pre-init lines, CUDA probes).

    ``TF_CPP_MIN_LOG_LEVEL`` does not reach those lines; they are shown only if the block fails.
    """
    return capture_fd(2)


try:
    with quiet_native_stderr():
        import tensorflow as tf
        import tf_keras as keras

        tf.get_logger().setLevel("ERROR")
        tf.config.list_physical_devices("GPU")  # the CUDA probe prints its lines now, silenced
except ImportError as exc:
    raise EdgesmithError(
        f"this step needs TensorFlow and tf-keras ({exc}): pip install 'edgesmith[train]'"
    ) from None

__all__ = ["keras", "quiet_native_stderr", "tf"]
