"""``BuildOptions``: the settings of ``edgesmith build`` beside the device and the data.

One source for each: :func:`edgesmith.app.build.build` takes them as keywords (or as one
``BuildOptions``), and the CLI's flags are built from these fields. Nothing heavy is imported
here, so that ``edgesmith build --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgesmith.core.config import Config, setting
from edgesmith.runtime.timing import TimingPlan

DEFAULT_REMOTE_TIMEOUT_S = 1800.0
DEFAULT_TIMING = TimingPlan(min_runs=300, min_seconds=1.0)
"""Shorter than ``edgesmith bench``'s: a build times every candidate only to rank them."""


@dataclasses.dataclass(frozen=True)
class BuildOptions(Config):
    """How to build, besides for which device and on which data.

    Attributes:
        recipe: a shipped recipe name, a recipe file or mapping (or a loaded ``BuildRecipe``);
            None: the shipped default.
        model: overrides the recipe's ``train.model``.
        epochs: overrides the recipe's ``train.epochs``.
        source: a trained Keras artifact to start from instead of training.
        host: ``[user@]device[:port]``: bench on that device over SSH instead of here.
        remote_edgesmith: the ``edgesmith`` command on the device.
        remote_dir: where each run makes (and afterwards removes) its own staging directory
            on the device; relative paths are under the device user's home.
        ssh_options: extra ssh ``-o`` options (``IdentityFile=~/.ssh/pi``).
        remote_timeout: the longest the copy, the remote bench and the fetch may each take.
        allow_delegate: load the delegate library a profile names when benching; a profile is
            a file anyone may hand over, so this is never implied.
        check_on_emulated: check every exported file's parity again on the CPU the profile's
            ``emulate`` key names (``export --check-on``); a file that fails there is not a
            candidate.
    """

    recipe: Any = setting(None, "build recipe (default: the shipped one)", metavar="FILE")
    model: str | None = setting(None, "overrides the recipe's train.model", metavar="NAME")
    epochs: int | None = setting(None, "overrides the recipe's train.epochs", low=1)
    source: str | Path | None = setting(
        None,
        "start from this trained Keras artifact instead of training",
        flag="--from",
        metavar="DIR",
    )
    host: str | None = setting(
        None, "bench on this device over SSH (scp + ssh)", metavar="USER@DEVICE[:PORT]"
    )
    remote_edgesmith: str = setting(
        "edgesmith", "the edgesmith command on the device", metavar="PATH"
    )
    remote_dir: str = setting(
        "edgesmith-build",
        "where each run makes its own staging folder on the device, removed afterwards "
        "(relative: under the device user's home)",
        metavar="DIR",
    )
    ssh_options: tuple[str, ...] = setting(
        (),
        "extra ssh/scp -o option, repeatable (e.g. Port=2222)",
        flag="--ssh-option",
        metavar="OPT",
        repeat=True,
    )
    remote_timeout: float = setting(
        DEFAULT_REMOTE_TIMEOUT_S,
        "longest the copy, the bench and the fetch on the device may each take",
        metavar="S",
        low=0.0,
    )
    allow_delegate: bool = setting(
        False, "load the delegate library (native code) the device profile names; see SECURITY.md"
    )
    check_on_emulated: bool = setting(
        False,
        "check each exported file's parity again on the emulated CPU the device profile's "
        "emulate key names (arm64-linux: aarch64, qemu-user); a file that fails there is no "
        "candidate",
    )
