"""Versions of the tools that made an artifact, read from package metadata (no imports)."""

from __future__ import annotations

import platform
from collections.abc import Iterable
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
    return {"python": platform.python_version(), **installed_versions(PACKAGES)}


def installed_versions(packages: Iterable[str]) -> dict[str, str]:
    """``{package: version}`` of those of ``packages`` that are installed, in their order."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
