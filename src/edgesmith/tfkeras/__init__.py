"""tf_keras helpers shared by the train, compress and export stages.

Loading and saving models, counting MACs and parameters, evaluation, the optimizer and the
tf.data pipeline that fine-tuning reuses. ``backend`` is the one module that imports TensorFlow
(with ``TF_USE_LEGACY_KERAS=1`` set first); importing this package alone loads nothing heavy.
"""

from __future__ import annotations

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
"""File suffixes of Keras model files edgesmith reads (besides SavedModel directories)."""

DEVICE_BUFFER = 2
"""Batches tf.data holds on one GPU: one in use, one arriving."""
