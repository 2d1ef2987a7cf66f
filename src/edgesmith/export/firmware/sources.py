"""The pinned TFLite Micro sources: found, checked against their commits, unpacked into a cache.

TFLM's Makefile downloads its third-party code itself; a firmware build must not depend on the
network at build time and must use the exact commits TFLM pins, so the sources come from a folder
the user gives (``--tflm-sources DIR`` or ``EDGESMITH_TFLM_SOURCES``) holding ``git archive``
tarballs (whose pax header records the commit, checked here) or unpacked folders. They are
unpacked once into ``~/.cache/edgesmith/tflm/<commit>/`` (``EDGESMITH_CACHE`` overrides the
root), laid out as TFLM's ``tools/make/downloads/`` expects, never into the project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from edgesmith.core.errors import EdgesmithError

SOURCES_ENV = "EDGESMITH_TFLM_SOURCES"
CACHE_ENV = "EDGESMITH_CACHE"
READY = ".edgesmith-ready"


@dataclass(frozen=True)
class Pinned:
    """One source tree: its repository, the commit TFLM pins, its folder name in downloads/."""

    repo: str
    commit: str
    folder: str
    archive_prefix: str


# The commits of TFLM 90b983c2's download scripts (flatbuffers v25.9.23 and kissfft v130 are
# tags; the commits are those the tags' archives record).
PINNED = (
    Pinned(
        "tensorflow/tflite-micro",
        "90b983c2b3f1480642e040bbd2ddb37b998f3424",
        "tflite-micro",
        "tflite-micro-",
    ),
    Pinned(
        "ARM-software/CMSIS-NN", "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae", "cmsis_nn", "cmsis_nn-"
    ),
    Pinned("ARM-software/CMSIS_6", "5782d6f8057906d360f4b95ec08a2354afe5c9b9", "cmsis", "cmsis-"),
    Pinned(
        "ARM-software/Cortex_DFP",
        "c2c70a97a20fb355815e2ead3d4a40e35a4a3cdf",
        "cortex_dfp",
        "cortex_dfp-",
    ),
    Pinned(
        "google/flatbuffers",
        "187240970746d00bbd26b0f5873ed54d2477f9f3",
        "flatbuffers",
        "flatbuffers-",
    ),
    Pinned("google/gemmlowp", "719139ce755a0f31cbf1c37f7f98adcc7fc9f425", "gemmlowp", "gemmlowp-"),
    Pinned("google/ruy", "d37128311b445e758136b8602d1bbd2a755e115d", "ruy", "ruy-"),
    Pinned(
        "mborgerding/kissfft", "918336beac80868ad3011cb283063bb224e3e5da", "kissfft", "kissfft-"
    ),
)
TFLM = PINNED[0]
DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"
PATCHES = {  # folder -> patch path relative to the tflite-micro root (TFLM's download scripts)
    "flatbuffers": "tensorflow/lite/micro/tools/make/flatbuffers.patch",
    "kissfft": "third_party/kissfft/kissfft.patch",
}


def cache_root() -> Path:
    """Where unpacked sources and built libraries live (outside any project)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "edgesmith"


def sources_dir(given: str | Path | None = None) -> Path:
    """The folder holding the pinned archives: the flag's value, else the environment's.

    Raises:
        EdgesmithError: neither is set, or the folder does not exist.
    """
    value = given if given is not None else os.environ.get(SOURCES_ENV)
    if not value:
        raise EdgesmithError(
            f"the TFLite Micro sources are not available: pass --tflm-sources DIR or set "
            f"{SOURCES_ENV} to a folder holding the pinned archives ({TFLM.repo} at "
            f"{TFLM.commit[:8]} and its third-party sources)"
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise EdgesmithError(f"--tflm-sources {value}: not a folder; expected the pinned archives")
    return path


def _archive_for(folder: Path, pin: Pinned) -> Path | None:
    hits = sorted(folder.glob(f"{pin.archive_prefix}*.tar.gz"))
    return hits[0] if hits else None


def archive_commit(archive: Path) -> str | None:
    """The commit ``git archive`` recorded in the tarball's pax header (None if absent)."""
    with tarfile.open(archive) as tar:
        return tar.pax_headers.get("comment")


def _unpack(source: Path, pin: Pinned, destination: Path) -> None:
    archive = _archive_for(source, pin)
    unpacked = source / pin.folder
    if archive is not None:
        commit = archive_commit(archive)
        if commit != pin.commit:
            raise EdgesmithError(
                f"{archive}: records commit {commit}; expected {pin.repo} at {pin.commit}"
            )
        with tarfile.open(archive) as tar:
            tar.extractall(destination.parent, filter="data")
        extracted = destination.parent / pin.folder
        if extracted != destination:
            shutil.move(str(extracted), str(destination))
    elif unpacked.is_dir():
        shutil.copytree(unpacked, destination, symlinks=True)
    else:
        raise EdgesmithError(
            f"--tflm-sources {source}: no {pin.archive_prefix}*.tar.gz or {pin.folder}/ in it; "
            f"expected {pin.repo} at {pin.commit[:8]}"
        )


def _root() -> Path:
    return cache_root() / "tflm" / TFLM.commit[:8]


def is_prepared() -> bool:
    """Whether the pinned sources are unpacked in the cache already (no source folder needed)."""
    return (_root() / READY).exists()


def prepare(given: str | Path | None = None) -> Path:
    """Unpack the pinned sources once; return the tflite-micro root ready for its Makefile.

    The layout is what TFLM's download scripts would have made (patches applied, Cortex_DFP
    under cmsis/, an empty pigweed/ since only TFLM's tests use it), so ``make`` downloads
    nothing.
    """
    root = _root()
    tflm = root / TFLM.folder
    if (root / READY).exists():
        return tflm
    source = sources_dir(given)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    _unpack(source, TFLM, tflm)
    downloads = tflm / DOWNLOADS
    downloads.mkdir(parents=True, exist_ok=True)
    for pin in PINNED[1:]:
        target = downloads / ("cmsis/Cortex_DFP" if pin.folder == "cortex_dfp" else pin.folder)
        _unpack(source, pin, target)
        patch = PATCHES.get(pin.folder)
        if patch:
            run = subprocess.run(
                ["patch", "-p1", "-i", str(tflm / patch)],
                cwd=target,
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode != 0:
                raise EdgesmithError(
                    f"applying {patch} to {pin.folder} failed: {run.stdout[-200:]}"
                )
    (downloads / "pigweed").mkdir(exist_ok=True)
    (root / READY).write_text("\n".join(f"{p.repo} {p.commit}" for p in PINNED) + "\n")
    return tflm
