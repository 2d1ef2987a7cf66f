"""The core: settings, artifacts, data, errors and progress, shared by every stage.

It imports no TensorFlow, no runtime and no stage: numpy, PyYAML and Pillow at most.
"""
