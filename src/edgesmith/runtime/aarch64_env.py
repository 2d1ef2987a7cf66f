"""An emulated aarch64 (Cortex-A72, Raspberry Pi 4 class) Python for the runtime, made in one call.

The env is a folder with a Debian bookworm arm64 root (``root/``: its ``/usr/bin/python3`` is
3.11) and the runtime's aarch64 wheels (``site/``), run as ``qemu-aarch64-static -L root -cpu
cortex-a72 root/usr/bin/python3``. Why this shape:

- ``debootstrap --foreign`` only downloads and unpacks; the second stage would run every
  maintainer script under the emulator (slow, and needs binfmt_misc or proot). Python needs none
  of them, so the downloaded packages are unpacked here instead.
- The wheels come from the host's pip (``--platform ..._aarch64 --only-binary=:all:``), so
  nothing is compiled or installed under the emulator.
- qemu-user 7.2 shows the guest the host's x86 ``/proc/cpuinfo``, on which LiteRT's
  ``Interpreter()`` and ``import onnxruntime`` crash. Its ``-L`` prefix makes every path that
  exists under ``root/`` win over the host's, so ``root/proc/cpuinfo`` (a Cortex-A72's) is what
  the guest reads: no root, no mount namespace.

A ``.incomplete`` marker is written first and removed last: a folder holding it is finished
(or redone) by the next :func:`setup_aarch64`, and :func:`find_aarch64` refuses it.

A finished env also gets ``bin/edgesmith`` (:func:`write_launcher`): ``python -m edgesmith`` on
the emulated CPU, started as the emulated bench child is, so that a build can reach it over SSH
(``--remote-edgesmith DIR/bin/edgesmith``) as it reaches a Raspberry Pi.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import Reporter, silent

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
CPU = "cortex-a72"
INCOMPLETE = ".incomplete"
"""Marker file: present from the first step of a setup until its last."""
PACKAGES = ("numpy", "ai-edge-litert>=2.3,<3", "onnxruntime>=1.20", "pyyaml", "pillow")
PLATFORMS = (
    "manylinux_2_36_aarch64",  # bookworm's glibc
    "manylinux_2_28_aarch64",
    "manylinux_2_27_aarch64",
    "manylinux2014_aarch64",
)
TOOL_HINT = "apt-get install debootstrap qemu-user-static (Debian/Ubuntu)"
LAUNCHER = "edgesmith"
"""The launcher's name, in ``bin/`` of an env (``edgesmith-bin/`` of a user's own sysroot)."""
SETUP_TIMEOUT_S = 1800.0

CPUINFO_CORE = """processor\t: {n}
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3
"""
CPUINFO_TAIL = (
    "Hardware\t: BCM2835\nRevision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n"
)


def cpuinfo_text(cores: int = 4) -> str:
    """A Raspberry Pi 4's ``/proc/cpuinfo`` (Cortex-A72, part 0xd08), ``cores`` processors."""
    return "\n".join(CPUINFO_CORE.format(n=n) for n in range(cores)) + "\n" + CPUINFO_TAIL


@dataclasses.dataclass(frozen=True)
class Aarch64Env:
    """A finished env: what :func:`~edgesmith.runtime.child.run_job` needs to start its Python."""

    root: Path
    """The aarch64 sysroot (``-L``); its ``usr/bin/python3`` runs the child."""
    site: Path
    """The aarch64 wheels' folder, put on ``PYTHONPATH``."""
    qemu: str
    """The qemu-aarch64 executable."""

    @property
    def python(self) -> Path:
        """The sysroot's Python, started under qemu."""
        return self.root / "usr" / "bin" / "python3"

    @property
    def argv(self) -> tuple[str, ...]:
        """The qemu invocation that runs the env's Python (``run_job``'s ``prefix``)."""
        return (self.qemu, "-L", str(self.root), "-cpu", CPU, str(self.python))

    @property
    def env(self) -> dict[str, str]:
        """Variables for the child: its own stdlib and wheels, never the host's site-packages."""
        return {
            "PYTHONHOME": str(self.root / "usr"),
            "PYTHONNOUSERSITE": "1",
            "PYTHONPATH": str(self.site),
        }

    @property
    def cpu(self) -> str:
        """What runs the child, e.g. ``qemu-aarch64 7.2.22 -cpu cortex-a72``."""
        from edgesmith.runtime.emulation import qemu_version

        return f"qemu-aarch64 {qemu_version(self.qemu)} -cpu {CPU}"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise EdgesmithError(f"the aarch64 env needs {name}, which is not installed: {TOOL_HINT}")
    return found


def _qemu() -> str:
    found = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if found is None:
        raise EdgesmithError(
            f"the aarch64 env needs qemu-aarch64-static, which is not installed: {TOOL_HINT}"
        )
    return found


def _layout(directory: Path) -> tuple[Path, Path]:
    """``(root, site)`` of an env folder, or of a user's own sysroot given as ``directory``."""
    if (directory / "usr" / "bin" / "python3").exists():  # a bare sysroot: wheels beside it
        return directory, directory / "edgesmith-site"
    return directory / "root", directory / "site"


def find_aarch64(directory: Path | str, *, site: Path | str | None = None) -> Aarch64Env:
    """The finished env in ``directory`` (an env folder, or a user's own aarch64 sysroot).

    Args:
        directory: a folder made by :func:`setup_aarch64`, or an aarch64 root holding
            ``usr/bin/python3`` (then its wheels are ``site`` or ``edgesmith-site`` in it).
        site: the folder of aarch64 wheels, when not the layout's own.

    Raises:
        EdgesmithError: one line naming what is missing.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise EdgesmithError(f"no aarch64 env at {directory}: not a folder")
    if (directory / INCOMPLETE).exists():
        raise EdgesmithError(
            f"the aarch64 env at {directory} is half made; finish it with setup_aarch64"
        )
    root, own_site = _layout(directory)
    site = Path(site) if site is not None else own_site
    python = root / "usr" / "bin" / "python3"
    if not python.exists():
        raise EdgesmithError(f"{directory} is not an aarch64 env: {python} is missing")
    for package in ("numpy", "onnxruntime", "ai_edge_litert"):
        if not (site / package).is_dir():
            raise EdgesmithError(f"the aarch64 env at {directory} lacks {package} in {site}")
    if not (root / "proc" / "cpuinfo").is_file():
        raise EdgesmithError(f"the aarch64 env at {directory} lacks {root / 'proc' / 'cpuinfo'}")
    return Aarch64Env(root=root, site=site, qemu=_qemu())


def launcher_path(directory: Path | str) -> Path:
    """Where :func:`write_launcher` puts the env's ``edgesmith``.

    ``bin/`` of an env folder; ``edgesmith-bin/`` beside a user's own sysroot's wheels, since its
    ``bin/`` is the guest's.
    """
    directory = Path(directory)
    root, _ = _layout(directory)
    return directory / ("edgesmith-bin" if root == directory else "bin") / LAUNCHER


def write_launcher(directory: Path | str) -> Path:
    """Write the env's executable ``edgesmith``: the CLI on the emulated Cortex-A72.

    The script is :func:`~edgesmith.runtime.emulation.launcher_text` of the env's emulator, the
    one the emulated bench child starts under, so both run the same Python, wheels and source.
    It is replaced whole (written beside, then renamed), never edited in place.

    Args:
        directory: a finished env (see :func:`find_aarch64`).

    Returns:
        The launcher's path.

    Raises:
        EdgesmithError: for a folder that is not a finished env, or one that cannot be written.
    """
    from edgesmith.runtime.emulation import aarch64_emulator, launcher_text

    text = launcher_text(aarch64_emulator(find_aarch64(directory)))
    path = launcher_path(directory)
    staged = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(exist_ok=True)
        staged.write_text(text, encoding="utf-8")
        staged.chmod(0o755)
        staged.replace(path)
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise EdgesmithError(f"cannot write the launcher {path}: {exc.strerror or exc}") from None
    return path


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=SETUP_TIMEOUT_S, check=False,
            env={**os.environ, **env} if env else None,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise EdgesmithError(f"{what} took over {SETUP_TIMEOUT_S:g} s and was stopped") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or "no message").splitlines()[-1]
        raise EdgesmithError(f"{what} failed (exit {done.returncode}): {said}")


def _unpack(root: Path, report: Reporter) -> None:
    """Unpack every package the first stage downloaded (``debootstrap/debpaths``) into ``root``.

    ``--keep-directory-symlink`` keeps bookworm's merged ``/usr`` links (``lib -> usr/lib``).
    """
    listing = root / "debootstrap" / "debpaths"
    debs = [line.split()[1] for line in listing.read_text().splitlines() if len(line.split()) == 2]
    report(f"aarch64 env: unpacking {len(debs)} packages")
    for deb in debs:
        feed = subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(root / deb.lstrip("/"))], stdout=subprocess.PIPE
        )
        tar = subprocess.run(
            ["tar", "-x", "--keep-directory-symlink", "-C", str(root), "-f", "-"],
            stdin=feed.stdout,
            capture_output=True,
            check=False,
        )
        if feed.stdout is not None:
            feed.stdout.close()
        if feed.wait() != 0 or tar.returncode != 0:
            raise EdgesmithError(f"cannot unpack {deb} into {root}")


def _pretend_cpu(root: Path) -> None:
    """Write a Cortex-A72 ``proc/cpuinfo`` and an empty ``etc/ld.so.cache`` into ``root``.

    The empty cache keeps the guest's loader off the host's x86 one: ``-L`` falls back to the
    host's path for any file missing under ``root``.
    """
    proc = root / "proc"
    if proc.is_symlink():  # debootstrap links proc to the host's /proc in some containers
        proc.unlink()
    proc.mkdir(exist_ok=True)
    (proc / "cpuinfo").write_text(cpuinfo_text(), encoding="utf-8")
    cache = root / "etc" / "ld.so.cache"
    if not cache.exists():
        cache.write_bytes(b"")


def setup_aarch64(
    directory: Path | str,
    *,
    report: Reporter = silent,
    mirror: str = MIRROR,
    pip: str | None = None,
) -> Aarch64Env:
    """Make (or finish) the aarch64 env in ``directory``; a finished one returns at once.

    Steps: ``debootstrap --foreign --arch=arm64 --variant=minbase --include=python3``, unpack
    the downloaded packages, write the Cortex-A72 cpuinfo, ``pip install --target site`` the
    aarch64 wheels, then check the env's Python imports the runtimes under qemu, and write the
    launcher (:func:`write_launcher`; a finished env gets it too, rewritten for this edgesmith).
    A given existing sysroot (holding ``usr/bin/python3``) is not bootstrapped, only given
    wheels.

    Args:
        directory: the env folder (made when missing).
        report: progress lines.
        mirror: the Debian mirror.
        pip: the pip command (default: this Python's ``-m pip``).

    Raises:
        EdgesmithError: a missing tool (naming its Debian package) or a failed step.
    """
    directory = Path(directory)
    marker = directory / INCOMPLETE
    if directory.is_dir() and not marker.exists() and any(directory.iterdir()):
        try:
            env = find_aarch64(directory)
        except EdgesmithError:  # a user's sysroot is given wheels; any other folder is refused
            if not (directory / "usr" / "bin" / "python3").exists():
                raise
        else:
            _report_launcher(write_launcher(directory), report)
            return env
    qemu = _qemu()
    directory.mkdir(parents=True, exist_ok=True)
    marker.touch()
    root, site = _layout(directory)
    if root != directory:  # ours: bootstrap it, redoing a root a broken run left behind
        if not (root / "usr" / "bin" / "python3").exists():
            debootstrap = _tool("debootstrap")
            _tool("dpkg-deb")
            if root.exists():
                report(f"aarch64 env: redoing the half-made root {root}")
                shutil.rmtree(root)
            report(f"aarch64 env: debootstrap {SUITE} arm64 (downloads ~40 MB)")
            _run(
                [debootstrap, "--foreign", "--arch=arm64", "--variant=minbase",
                 "--include=python3", SUITE, str(root), mirror],
                "debootstrap",
            )  # fmt: skip
            _unpack(root, report)
    _pretend_cpu(root)
    if not (site / "ai_edge_litert").is_dir() or not (site / "onnxruntime").is_dir():
        report("aarch64 env: pip install the aarch64 wheels")
        platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
        command = [pip] if pip else [sys.executable, "-m", "pip"]
        _run(
            [*command, "install", "--quiet", "--upgrade", "--target", str(site), *platforms,
             "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
             *PACKAGES],
            "pip install of the aarch64 wheels",
        )  # fmt: skip
    env = Aarch64Env(root=root, site=site, qemu=qemu)
    report("aarch64 env: checking the runtimes import under qemu")
    _run(
        [*env.argv, "-c", "import numpy, onnxruntime, yaml, PIL; "
         "from ai_edge_litert.interpreter import Interpreter"],
        "the aarch64 env's import check",
        env.env,
    )  # fmt: skip
    marker.unlink()
    report(f"aarch64 env ready: {directory}")
    _report_launcher(write_launcher(directory), report)
    return env


def ready_message(directory: Path | str, env: Aarch64Env) -> str:
    """What ``edgesmith device setup`` prints: the env, how to point edgesmith at it, the uses."""
    from edgesmith.runtime.emulation import AARCH64_ENV_VARIABLE, aarch64_env_dir

    folder = Path(directory).resolve()
    lines = [f"aarch64 environment ready: {directory} ({env.cpu})"]
    if folder != aarch64_env_dir().resolve():
        lines.append(f"use it with: export {AARCH64_ENV_VARIABLE}={folder}")
    lines.append("then: edgesmith bench MODEL --data SPEC --emulate aarch64")
    lines.append(f"or, as a device over SSH: --remote-edgesmith {launcher_path(directory)}")
    return "\n".join(lines)


def _report_launcher(path: Path, report: Reporter) -> None:
    report(
        f"aarch64 env: {path} runs edgesmith on the emulated CPU; over SSH it is a device: "
        f"edgesmith build --device arm64-linux --host USER@HOST --remote-edgesmith {path}"
    )
