"""Versions of the tools that made an artifact, read from package metadata (no imports)."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = (
    "edgesmith",
    "numpy",
    "tensorflow",
    "tf-keras",
    "tensorflow-model-optimization",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "ai-edge-litert",
)


def tool_versions() -> dict[str, str]:
    """Return ``{package: version}`` for Python and every installed package that matters here."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
