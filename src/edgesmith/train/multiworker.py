"""Multi-worker training helpers: write ``TF_CONFIG``, or run N workers on this machine.

TensorFlow's MultiWorkerMirroredStrategy reads the cluster from ``TF_CONFIG``; every machine
runs the same ``edgesmith train ... --strategy multiworker`` with its own task index. On one
machine (to try it, or to test it) ``launch_local`` starts the workers on loopback ports.

    python -m edgesmith.train.multiworker tf-config --hosts a:2222,b:2222 --index 0
    python -m edgesmith.train.multiworker local --workers 2 -- --data digits --out runs/mw
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence

from edgesmith.core.errors import EdgesmithError


def tf_config(hosts: Sequence[str], index: int) -> str:
    """The ``TF_CONFIG`` JSON for worker ``index`` of a cluster of ``hosts`` (``host:port``).

    Raises:
        EdgesmithError: for an empty host list, a host without a port, or a bad index.
    """
    hosts = list(hosts)
    if not hosts:
        raise EdgesmithError("a multi-worker cluster needs at least one host:port")
    for host in hosts:
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise EdgesmithError(f"workers are given as host:port. Received: {host!r}")
    if not 0 <= index < len(hosts):
        raise EdgesmithError(f"worker index must be in [0, {len(hosts)}). Received: {index}")
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports that are free on loopback right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def launch_local(
    workers: int, train_args: Sequence[str], *, timeout: float | None = None
) -> list[subprocess.CompletedProcess]:
    """Run ``edgesmith train <train_args> --strategy multiworker`` as local worker processes.

    Worker 0 (the chief) writes the artifact to the ``--out`` given; the others keep their copy
    in a temporary directory. Each worker reports its final weights' sha256.

    Returns:
        Each worker's completed process (stdout and stderr captured).

    Raises:
        EdgesmithError: for fewer than 2 workers.
    """
    if workers < 2:
        raise EdgesmithError(f"a local multi-worker run needs >= 2 workers. Received: {workers}")
    hosts = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    command = [sys.executable, "-m", "edgesmith", "train", *train_args, "--strategy", "multiworker"]
    processes = []
    for index in range(workers):
        env = {**os.environ, "TF_CONFIG": tf_config(hosts, index)}
        processes.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edgesmith.train.multiworker``: print a TF_CONFIG, or run local workers."""
    parser = argparse.ArgumentParser(
        prog="python -m edgesmith.train.multiworker", description=__doc__.split("\n\n")[0]
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    config = modes.add_parser("tf-config", help="print the TF_CONFIG of one worker")
    config.add_argument("--hosts", required=True, help="host:port,host:port,...")
    config.add_argument("--index", type=int, required=True, help="this worker's index")
    local = modes.add_parser("local", help="run N workers on this machine (loopback)")
    local.add_argument("--workers", type=int, default=2)
    local.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then edgesmith train flags")
    args = parser.parse_args(argv)
    try:
        if args.mode == "tf-config":
            print(tf_config(args.hosts.split(","), args.index))
            return 0
        train_args = [a for a in args.train_args if a != "--"]
        results = launch_local(args.workers, train_args)
    except EdgesmithError as exc:
        print(f"edgesmith: error: {exc}", file=sys.stderr)
        return exc.exit_code
    for index, result in enumerate(results):
        sys.stderr.write(f"--- worker {index} (exit {result.returncode})\n{result.stderr}")
    return max(result.returncode for result in results)


if __name__ == "__main__":
    sys.exit(main())
