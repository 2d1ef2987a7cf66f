"""Instructions per inference, counted by valgrind's callgrind: a cost that noise cannot move.

Wall-clock on a shared machine drifts by several percent between runs, so a latency gate
cannot see a 2% slowdown. The number of instructions a runner executes per inference is the
same in every process on the same CPU class and runtime version, so a gate on it can.

How it is counted: a child process (``child.py``'s ``count`` job) loads each model, warms it up
and runs loops of inferences, each inside one call to libc's ``qsort_r``; callgrind counts only
inside that function (``--collect-atstart=no --toggle-collect=qsort_r``) and writes one profile
as each call returns (``--dump-after=qsort_r``), so Python's start-up, the imports and the
model's loading are never counted. After an empty loop (the callback's first-call cost), loops
of ``runs / 2`` and ``runs`` inferences are counted; the difference of their counts divided by
the difference of their runs is the per-inference cost, the loop's fixed entry cost cancelled.

What it can and cannot see: a count compares like with like (the same kind of file on the same
runtime): a channel or an op added shows up to the instruction; a float file swapped for an int8
one, or a kernel that stalls on memory, does not run more instructions and may still be slower.
That is the wall-clock gate's job; both are recorded side by side.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import Reporter
from edgesmith.runtime.bench_schema import Instructions
from edgesmith.runtime.child import COUNTED_FUNCTION, run_job

SCOPE = (
    "one runner step per inference (set input, invoke, read output), counted inside the loop "
    "only: start-up, loading and warm-up excluded"
)
MIN_RUNS = 2
MAX_RUNS = 100_000
COUNT_TIMEOUT_S = 1800.0
VALGRIND_HINT = "install it with: apt-get install valgrind (Debian/Ubuntu)"
_TOTALS = re.compile(r"^(?:totals|summary):\s+(\d+)", re.MULTILINE)


def valgrind_path() -> str:
    """The valgrind executable.

    Raises:
        EdgesmithError: when valgrind is not installed, naming the package.
    """
    found = shutil.which("valgrind")
    if found is None:
        raise EdgesmithError(f"--measure instructions needs valgrind, which is not installed: "
                             f"{VALGRIND_HINT}")  # fmt: skip
    return found


def valgrind_version(valgrind: str) -> str:
    """``valgrind-3.19.0``, or ``valgrind`` where it does not say."""
    try:
        said = subprocess.run(
            [valgrind, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        said = ""
    return said or "valgrind"


def check_countable(config: object, runs: int = 40) -> str:
    """The valgrind to count with, once the settings are ones a count can be taken under.

    Called before any bench work, so a refusal comes at once, not after a timed run.

    Raises:
        EdgesmithError: for an odd or out-of-range ``runs``, threads other than 1, or no
            valgrind on this machine.
    """
    from edgesmith.runtime.bench import BenchConfig

    if not isinstance(config, BenchConfig):
        raise TypeError("config must be a BenchConfig")
    if not MIN_RUNS <= runs <= MAX_RUNS or runs % 2:
        raise EdgesmithError(
            f"instruction runs must be an even number in [{MIN_RUNS}, {MAX_RUNS}]. Received: {runs}"
        )
    if config.threads != 1:
        raise EdgesmithError(
            "--measure instructions counts one thread: worker threads spin while they wait, "
            f"and a spin's count changes from run to run (got --threads {config.threads}; "
            "use --threads 1)"
        )
    return valgrind_path()


def count_instructions(
    paths: Sequence[str | Path],
    config: object,
    *,
    data: str | None = None,
    runs: int = 40,
    report: Reporter | None = None,
) -> list[Instructions]:
    """Instructions per inference of each model, through the same runner ``bench`` times.

    Each model is counted in a child process of its own under callgrind (about 12 s for a
    small model, most of it Python's start-up under valgrind).

    Args:
        paths: .tflite/.onnx files or artifact directories.
        config: the :class:`~edgesmith.runtime.bench.BenchConfig` they are loaded and fed with
            (threads must be 1: threads spin, and a spin-wait's count is not deterministic).
        data: the data spec whose first eval images are the input (None: seeded noise).
        runs: inferences in the longer of the two counted loops (even, >= 2).
        report: progress lines.

    Returns:
        One record per path, in order.

    Raises:
        EdgesmithError: without valgrind, for more than one thread, or when the child fails.
    """
    valgrind = check_countable(config, runs)
    report = report or (lambda line: None)
    tool = f"{valgrind_version(valgrind)} callgrind"
    counts = []
    for path in paths:
        report(f"counting instructions of {path} under callgrind: {runs // 2} and {runs} "
               "inferences")  # fmt: skip
        counts.append(_count_one(valgrind, str(path), config, data, runs, tool, report))
    return counts


def _count_one(
    valgrind: str, path: str, config, data: str | None, runs: int, tool: str, report: Reporter
) -> Instructions:
    """One model counted in a child of its own.

    One child per model, because a model counted after another in the same process runs a
    slightly different count (0.2% on the test fixture: the interpreter's caches are warm from
    the first), while a model alone in its child gives the same count in every process.
    """
    with tempfile.TemporaryDirectory(prefix="edgesmith-callgrind-") as tmp:
        dumps = str(Path(tmp) / "callgrind.out")
        prefix = [
            valgrind, "--tool=callgrind", "--collect-atstart=no",
            f"--toggle-collect={COUNTED_FUNCTION}", f"--dump-after={COUNTED_FUNCTION}",
            f"--callgrind-out-file={dumps}", "--quiet", sys.executable,
        ]  # fmt: skip
        request = {"job": "count", "paths": [path], "config": config.to_dict(), "data": data,
                   "runs": runs, "dumps": dumps}  # fmt: skip
        answer = run_job(prefix, request, label="callgrind", timeout=COUNT_TIMEOUT_S, report=report)
        (model,) = answer["models"]
        return _per_inference(model, dumps, runs, tool)


def _per_inference(model: dict, dumps: str, runs: int, tool: str) -> Instructions:
    """One model's record from the totals of its warm-up, half and full loops' profiles."""
    warm, half, full = model["parts"]
    if warm is None or half != warm + 1 or full != half + 1:
        raise EdgesmithError(
            f"callgrind's profiles of {model['path']} are not one per counted loop (got parts "
            f"{model['parts']}): something inside the inference called {COUNTED_FUNCTION} "
            "itself, so no count can be taken this way"
        )
    short, long = _total(f"{dumps}.{half}"), _total(f"{dumps}.{full}")
    per_inference = (long - short) / (runs - runs // 2)
    if per_inference <= 0:
        raise EdgesmithError(
            f"callgrind counted {short} and {long} instructions for {runs // 2} and {runs} "
            f"inferences of {model['path']}: no per-inference cost can be taken from that"
        )
    return Instructions(
        per_inference=per_inference,
        runs=runs,
        overhead=round(short - per_inference * (runs // 2)),
        tool=tool,
        scope=SCOPE,
    )


def _total(profile: str) -> int:
    """The instruction total of one callgrind profile."""
    path = Path(profile)
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    found = _TOTALS.search(text)
    if found is None:
        raise EdgesmithError(f"callgrind wrote no instruction total in {path.name} "
                             "(is valgrind working here?)")  # fmt: skip
    return int(found.group(1))


def increase(candidate: Instructions, reference: Instructions) -> float:
    """The candidate's instructions per inference over the reference's (1.02 = 2% more)."""
    return candidate.per_inference / reference.per_inference


@dataclasses.dataclass(frozen=True)
class InstructionComparison:
    """Candidate and reference counted in the same way on this machine, and their ratio."""

    candidate: Instructions
    reference: Instructions

    @property
    def ratio(self) -> float:
        """Candidate over reference."""
        return increase(self.candidate, self.reference)
