"""One runtime job in a child process, under an emulator or a counter: a JSON request in, JSON out.

``python -m edgesmith.runtime.child REQUEST.json`` runs the job the request names and writes
its answer to the request's ``out`` file. The parent (``emulation.py``, ``instructions.py``)
starts this module under ``qemu-x86_64 -cpu Haswell``, ``qemu-aarch64`` or valgrind, so the very
runner code the host runs executes on the emulated CPU or under the counter. Passing a request
file rather than rebuilding a command line keeps every setting in its config record.

Jobs:
    bench   ``benchmark(paths, data, config)``; writes the bench document.
    count   loads each model, warms it up and runs loops of inferences, each inside one call
            to libc's ``qsort_r`` (a ctypes callback), the one function callgrind is told to
            count in: start-up, loading and warm-up stay outside the count.
    predict one file's float32 outputs for the pixels of a ``.npy`` file, written to another
            (export's parity on an emulated CPU compares them with the native file's).

Errors are one line on stderr and exit 2, as in the CLI; the parent relays the line.

``python -m edgesmith.runtime.child --serve`` keeps one child running for many jobs (a
:class:`ChildSession`): one JSON request per line on stdin, one JSON answer per line back. A
Python under qemu takes seconds to start and import the runtimes, so an export that checks
several files on an emulated CPU pays that once, and the start-up overlaps the conversion.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.progress import Reporter

COUNT_WARMUP = 20
"""Steps before a count, whatever the timing plan: Python's adaptive interpreter specialises a
function's code over its first calls, so the count settles only after a few (one warm-up step
counted 1.3% fewer instructions per inference than ten on the test fixture)."""
QEMU_CPUID_NOISE = "TCG doesn't support requested feature"
"""qemu-x86_64's start-up warning for each Haswell CPUID bit it cannot emulate (none that a
runtime uses): not relayed, nor taken as the child's last word."""
COUNTED_FUNCTION = "qsort_r"
"""The libc function callgrind counts inside (``--toggle-collect``); the loop is its callback."""


def run_bench(request: dict) -> dict:
    """The ``bench`` job: the bench document of the request's paths."""
    from edgesmith.core.progress import stderr_reporter
    from edgesmith.runtime.bench import BenchConfig, benchmark

    config = BenchConfig.from_dict(request["config"])
    run = benchmark(
        request["paths"], data=request.get("data"), config=config, report=stderr_reporter(False)
    )
    return run.document.to_dict()


def run_count(request: dict) -> dict:
    """The ``count`` job: per model, a warm-up, then loops of ``runs / 2`` and ``runs`` steps.

    Each loop runs inside one call of the counted function; callgrind (``--dump-after``) writes
    one numbered profile as each call returns, and the job records which number belongs to
    which loop, so the parent never guesses which dumps are its own.
    """
    from edgesmith.runtime.bench import BenchConfig, open_model

    config = BenchConfig.from_dict(request["config"])
    pixels = None
    if request.get("data"):
        from edgesmith.core.datasets import load_dataset

        pixels = load_dataset(request["data"]).x_eval
    runs = int(request["runs"])
    dumps = request.get("dumps")
    models = []
    for path in request["paths"]:
        loaded = open_model(path, config, pixels, request.get("data"))
        for _ in range(int(request.get("warmup", COUNT_WARMUP))):
            loaded.step()
        gc.collect()
        gc.disable()  # the collector's passes are the interpreter's cost, not the model's
        try:
            parts = [_counted_call(loaded.step, n, dumps) for n in (0, runs // 2, runs)]
        finally:
            gc.enable()
        loaded.model.close()
        models.append(
            {
                "path": path,
                "runtime": loaded.model.runtime,
                "provider": loaded.model.provider_used,
                "parts": parts,
            }
        )
    return {"runs": runs, "models": models}


def _counted_call(step, runs: int, dumps: str | None) -> int | None:
    """Run ``step`` ``runs`` times inside one call of libc's qsort (and so of ``qsort_r``).

    Returns the number of the newest profile callgrind has dumped once the call returned
    (None when not under callgrind, or no ``dumps`` prefix was given).
    """

    def loop(_a: int, _b: int) -> int:
        for _ in range(runs):
            step()
        return 0

    compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    callback = compare(loop)
    pair = (ctypes.c_int * 2)(1, 2)
    qsort = ctypes.CDLL(None).qsort  # glibc's qsort hands its work to qsort_r, which is counted
    qsort.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, compare]
    qsort.restype = None
    qsort(pair, 2, ctypes.sizeof(ctypes.c_int), callback)  # two items: one comparison
    if dumps is None:
        return None
    prefix = Path(dumps)
    numbers = [
        int(found.name.rsplit(".", 1)[1])
        for found in prefix.parent.glob(prefix.name + ".*")
        if found.name.rsplit(".", 1)[1].isdigit()
    ]
    return max(numbers, default=None)


def run_predict(request: dict) -> dict:
    """The ``predict`` job: a file's float32 outputs for the request's pixels, saved as .npy.

    Loaded as the parity check loads it natively (``edgesmith.runtime.load`` with the
    request's ``xnnpack`` and ``provider``), so only the CPU under the runner differs.
    """
    import numpy as np

    from edgesmith.runtime.model import load

    pixels = np.load(request["pixels"], allow_pickle=False)
    xnnpack = bool(request.get("xnnpack", True))
    model = load(request["path"], xnnpack=xnnpack, provider=request.get("provider"))
    try:
        outputs = np.asarray(model.predict(pixels), dtype=np.float32)
        runtime, provider = model.runtime, model.provider_used
    finally:
        model.close()
    np.save(request["outputs"], outputs, allow_pickle=False)
    return {"runtime": runtime, "provider": provider, "shape": list(outputs.shape)}


JOBS = {"bench": run_bench, "count": run_count, "predict": run_predict}


def source_dir() -> Path:
    """The folder holding the ``edgesmith`` package, put on the child's ``PYTHONPATH``."""
    return Path(__file__).resolve().parents[2]


def run_job(
    prefix: Sequence[str],
    request: dict,
    *,
    label: str,
    timeout: float,
    env: dict[str, str] | None = None,
    report: Reporter | None = None,
) -> dict:
    """Run one job in a child started by ``prefix`` (an emulator or counter, then python).

    The child's progress lines reach ``report`` as they come, prefixed with ``label``.

    Args:
        prefix: the argv that runs a Python, e.g. ``[qemu-x86_64-static, -cpu, Haswell,
            sys.executable]``; ``-m edgesmith.runtime.child REQUEST`` is appended.
        request: the job (``job`` and its fields; ``out`` is set here).
        label: names the child in progress lines and errors (``emulated aarch64``).
        timeout: seconds before the child is killed.
        env: variables added to this process's environment.
        report: progress lines.

    Returns:
        The job's answer.

    Raises:
        EdgesmithError: the child's own one-line error, a crash, or the timeout.
    """
    report = report or (lambda line: None)
    with tempfile.TemporaryDirectory(prefix="edgesmith-child-") as tmp:
        out = Path(tmp) / "answer.json"
        request_file = Path(tmp) / "request.json"
        request_file.write_text(json.dumps({**request, "out": str(out)}), encoding="utf-8")
        environ = _child_environ(env)
        argv = [*prefix, "-m", "edgesmith.runtime.child", str(request_file)]
        try:  # in the parent's folder, so relative model and data paths mean the same there
            child = subprocess.Popen(
                argv, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True, errors="replace",
            )  # fmt: skip
        except OSError as exc:
            raise EdgesmithError(f"cannot start {label}: {argv[0]}: {exc.strerror}") from None
        lines: list[str] = []
        reader = threading.Thread(target=_relay, args=(child, label, lines, report), daemon=True)
        reader.start()
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise EdgesmithError(f"{label} took over {timeout:g} s and was stopped") from None
        finally:
            reader.join(timeout=5.0)
        last = lines[-1] if lines else ""
        if child.returncode != 0 or not out.is_file():
            said = last.removeprefix("edgesmith: error: ") or "no message"
            if child.returncode == 2:
                raise EdgesmithError(said)
            raise EdgesmithError(f"{label} failed (exit {child.returncode}): {said}")
        return json.loads(out.read_text(encoding="utf-8"))


class ChildSession:
    """One child Python that answers many jobs, started once (``--serve``).

    Args:
        prefix: the argv that runs a Python (an emulator, then python), as for :func:`run_job`.
        label: names the child in progress lines and errors (``emulated aarch64``).
        env: variables added to this process's environment.
        report: the child's progress lines, prefixed with ``label``.

    Raises:
        EdgesmithError: when the child cannot be started.
    """

    def __init__(
        self,
        prefix: Sequence[str],
        *,
        label: str,
        env: dict[str, str] | None = None,
        report: Reporter | None = None,
    ) -> None:
        self.label = label
        self._lines: list[str] = []
        self._answers: queue.Queue[str | None] = queue.Queue()
        argv = [*prefix, "-m", "edgesmith.runtime.child", "--serve"]
        try:
            self._child = subprocess.Popen(
                argv, env=_child_environ(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, errors="replace",
            )  # fmt: skip
        except OSError as exc:
            raise EdgesmithError(f"cannot start {label}: {argv[0]}: {exc.strerror}") from None
        report = report or (lambda line: None)
        self._threads = [
            threading.Thread(
                target=_relay, args=(self._child, label, self._lines, report), daemon=True
            ),
            threading.Thread(target=self._read_answers, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_answers(self) -> None:
        assert self._child.stdout is not None
        for line in self._child.stdout:
            if line.strip():
                self._answers.put(line)
        self._answers.put(None)  # the child has gone

    def ask(self, request: dict, *, timeout: float) -> dict:
        """Send one job and wait for its answer.

        Raises:
            EdgesmithError: the job's own one-line error, the child's end (a crash), or the
                timeout (the child is then stopped).
        """
        assert self._child.stdin is not None
        try:
            self._child.stdin.write(json.dumps(request) + "\n")
            self._child.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the child has ended: its end is reported below
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            self.close(kill=True)
            raise EdgesmithError(f"{self.label} took over {timeout:g} s and was stopped") from None
        if line is None:
            self._answers.put(None)
            code = self._child.wait()
            said = (self._lines[-1] if self._lines else "").removeprefix("edgesmith: ")
            raise EdgesmithError(f"{self.label} ended (exit {code}): {said or 'no message'}")
        reply = json.loads(line)
        if "error" in reply:
            if reply.get("exit") == 2:
                raise EdgesmithError(reply["error"])
            raise EdgesmithError(f"{self.label} failed: {reply['error']}")
        return reply["answer"]

    @property
    def alive(self) -> bool:
        """Whether the child still runs."""
        return self._child.poll() is None

    def close(self, *, kill: bool = False) -> None:
        """End the child (at once with ``kill``, else when it has read its last request)."""
        if self._child.poll() is None:
            try:
                if self._child.stdin is not None:
                    self._child.stdin.close()
            except OSError:
                pass
            if kill:
                self._child.kill()
            try:
                self._child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
        for thread in self._threads:
            thread.join(timeout=5.0)

    def __enter__(self) -> ChildSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(kill=exc_info[0] is not None)


def with_source_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this package's source appended to its ``PYTHONPATH`` (a child imports it)."""
    paths = (env.get("PYTHONPATH"), str(source_dir()))
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _child_environ(env: dict[str, str] | None) -> dict[str, str]:
    """This process's environment, ``env`` over it, with this package's source on the path."""
    return with_source_path({**os.environ, "PYTHONHASHSEED": "0", **(env or {})})


def serve() -> int:
    """Answer one JSON request per stdin line with one JSON line, until stdin closes.

    The answers go to the original stdout; fd 1 itself is pointed at stderr first, so whatever
    a native library prints can never be taken for an answer.
    """
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    import numpy  # noqa: F401  the slow imports at start-up, while the parent is still busy

    import edgesmith.runtime.model  # noqa: F401

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            job = JOBS.get(request.get("job"))
            if job is None:
                raise EdgesmithError(
                    f"unknown job {request.get('job')!r}; expected one of {list(JOBS)}"
                )
            reply: dict = {"answer": job(request)}
        except EdgesmithError as exc:
            reply = {"error": str(exc), "exit": 2}
        except Exception as exc:  # a bug or a runtime's crash-worthy error: the parent decides
            reply = {"error": f"{type(exc).__name__}: {exc}", "exit": 3}
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()
    return 0


def _relay(child: subprocess.Popen, label: str, lines: list[str], report: Reporter) -> None:
    """Pass the child's stderr lines on as progress, keeping them for the error message."""
    assert child.stderr is not None
    for line in child.stderr:
        line = line.rstrip()
        if line and QEMU_CPUID_NOISE not in line:
            lines.append(line)
            report(f"[{label}] {line.removeprefix('edgesmith: ')}")


def main(argv: list[str] | None = None) -> int:
    """Run the job of ``argv[0]`` (a request file); 0 done, 2 bad input, 3 a bug."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--serve"]:
        return serve()
    try:
        if len(argv) != 1:
            raise EdgesmithError("usage: python -m edgesmith.runtime.child REQUEST.json | --serve")
        request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        job = JOBS.get(request.get("job"))
        if job is None:
            raise EdgesmithError(
                f"unknown job {request.get('job')!r}; expected one of {list(JOBS)}"
            )
        answer = job(request)
        Path(request["out"]).write_text(json.dumps(answer), encoding="utf-8")
    except EdgesmithError as exc:
        print(f"edgesmith: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug or a crash-worthy runtime error: one line for the parent
        print(f"edgesmith: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
