"""A warm cluster's standby driver: a job's driver started ahead, waiting for its run.

``python -m flyray.executors.localcluster.warm.standby_driver --socket PATH`` is the
entrypoint of the job a warm cluster keeps submitted (``warm.standby``). It imports what
``flyray.entrypoint`` and a Ray task need (flyray, Ray, the run store). A job submitted with a
code bundle (``working_dir``: the last run's) also connects to the cluster as its driver and
starts its workers, one per CPU of every node, which stay idle for the job. Then it listens on
the Unix socket ``PATH`` for one run: the manifest's entrypoint argv and code bundle URI. It
acknowledges, then becomes that run's driver:

- the same bundle: Ray is up with it, workers and all; the run's entrypoint runs;
- another bundle (or none at submission): Ray, if connected, is shut down; the run's bundle
  becomes the job's ``working_dir``, written into the job config that Ray's supervisor passes
  the driver (``RAY_JOB_CONFIG_JSON_ENV_VAR``) and that ``ray.init()`` reads, so the job's
  workers get the code as with a job submitted with it; the bundle is unpacked and made the
  working directory, as Ray does for a driver; the run's entrypoint runs and connects anew.

The entrypoint is ``flyray.entrypoint.main`` with the entrypoint's arguments, in this process.

The socket is the hand-over channel of a cluster that flyray started on this machine; it lives
in a folder of mode 0700 in the cluster's temp dir, beside the cluster's token file, so only
the cluster's owner can reach it. A standby whose cluster stops goes with its supervisor: Ray
kills a driver's process group when its job supervisor dies.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["ENTRYPOINT_MODULE", "main"]

ENTRYPOINT_MODULE = "flyray.entrypoint"  # the one program a standby runs
READ_TIMEOUT_S = 10.0  # how long a connected run may take to send its message
MAX_MESSAGE_BYTES = 1 << 20
WARM_UP_TIMEOUT_S = 30.0  # how long the workers may take to start before the standby waits


def main(argv: Sequence[str] | None = None) -> int:
    """Wait for a run and drive it: the entrypoint's exit code (1 for a run refused)."""
    args = _parser().parse_args(argv)
    _preload()
    submitted = _job_working_dir()
    if submitted is not None:
        _warm_up()
    socket_path = Path(args.socket)
    run, why = _wait_for_run(socket_path)
    if why is not None:
        print(f"flyray: standby driver refused a run: {why}", file=sys.stderr, flush=True)
        return 1
    folder = None
    if run["working_dir"] != submitted:
        folder = _adopt(run["working_dir"], parent=socket_path.parent)
    attempt, command = run["attempt"], " ".join(run["argv"])
    print(f"flyray: this standby driver runs attempt {attempt}: {command}", flush=True)
    import ray

    from flyray import entrypoint

    try:
        return entrypoint.main(run["argv"][3:])
    finally:
        # The Ray this driver connected ahead is left by the task's post(): shut it down
        # here, as post() does for a Ray it started (at interpreter exit it takes longer).
        ray.shutdown()
        if folder is not None:
            os.chdir("/")
            shutil.rmtree(folder, ignore_errors=True)


def _check_message(message: Any) -> str | None:
    """Why a hand-over message cannot be run, or None: it must carry flyray's entrypoint."""
    if not isinstance(message, dict):
        return "the message is not a JSON object"
    argv, working_dir = message.get("argv"), message.get("working_dir")
    if not (isinstance(argv, list) and all(isinstance(arg, str) for arg in argv)):
        return "argv must be a list of strings"
    if argv[1:3] != ["-m", ENTRYPOINT_MODULE]:
        return f"argv must run `python -m {ENTRYPOINT_MODULE}`, not {argv[:3]}"
    if not isinstance(working_dir, str) or not working_dir:
        return "working_dir must be the code bundle's URI"
    if not isinstance(message.get("attempt"), str):
        return "attempt must be the submission id the run's attempt stands for"
    return None


def _job_working_dir() -> str | None:
    """The code bundle this job was submitted with (Ray started this driver in it), if any."""
    from flyray.plugins.ray.task import JOB_CONFIG_ENV

    config = json.loads(os.environ.get(JOB_CONFIG_ENV) or "{}")
    return (config.get("runtime_env") or {}).get("working_dir")


def _warm_up() -> None:
    """Connect to the cluster as the job's driver and start its workers: one per CPU per node.

    What ``RayFunctionTask.pre()`` does in a job (``ray.init()``, no arguments: the job's
    runtime env is Ray's job config), done ahead; its ``pre()`` then finds Ray up and leaves
    it. Each worker runs one empty task pinned to its node and stays, idle, for the job. CPUs
    that other jobs hold can keep some from starting: after ``WARM_UP_TIMEOUT_S`` the standby
    waits for its run all the same (the rest start when CPUs are free).
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray.init()
    start = ray.remote(_started)
    started = [
        start.options(
            name="flyray standby: start a worker",
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
        ).remote()
        for node in ray.nodes()
        if node["Alive"]
        for _ in range(int(node["Resources"].get("CPU", 0)))
    ]
    if started:
        ray.wait(started, num_returns=len(started), timeout=WARM_UP_TIMEOUT_S)


def _started() -> None:
    """The task that starts a worker: nothing to do."""


def _preload() -> None:
    """Import what a driver of a flyray run imports, before there is a run."""
    import ray  # noqa: F401
    import yaml  # noqa: F401

    import flyray.entrypoint
    import flyray.plugins.ray
    import flyray.store.bundle
    import flyray.task.loader  # noqa: F401
    from flyray.store.runstore import RunStore  # noqa: F401


def _wait_for_run(path: Path) -> tuple[Any, str | None]:
    """The first message on the socket at ``path``, and why it cannot run (None: it can).

    The socket is bound under a temporary name and renamed once it listens, so a run that
    sees ``path`` can connect. The run is answered whether its message is taken or refused.
    """
    temp = path.with_name(f".{path.name}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(temp))
        server.listen(1)
        os.replace(temp, path)
        try:
            conn, _ = server.accept()
            with conn:
                message = _read(conn)
                why = _check_message(message)
                _reply(conn, {"ok": why is None, "error": why})
            return message, why
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _read(conn: socket.socket) -> Any:
    """One JSON line from ``conn``; None if it is not one."""
    conn.settimeout(READ_TIMEOUT_S)
    data = b""
    try:
        while not data.endswith(b"\n") and len(data) < MAX_MESSAGE_BYTES:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return json.loads(data)
    except (OSError, ValueError):
        return None


def _reply(conn: socket.socket, answer: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(answer).encode() + b"\n")


def _adopt(working_dir: str, *, parent: Path) -> Path:
    """Make ``working_dir`` the job's and this driver's: job config, unpacked bundle, cwd.

    A Ray connected for another bundle is shut down first: ``pre()`` connects again, with
    this one. The folder the driver started in leaves ``sys.path`` (``python -m`` put it
    first), so that only this bundle's code is found.
    """
    import ray

    from flyray.entrypoint import enter_bundle
    from flyray.plugins.ray.task import JOB_CONFIG_ENV

    if ray.is_initialized():
        ray.shutdown()
    config = json.loads(os.environ.get(JOB_CONFIG_ENV) or "{}")
    config["runtime_env"] = {**(config.get("runtime_env") or {}), "working_dir": working_dir}
    os.environ[JOB_CONFIG_ENV] = json.dumps(config)
    with contextlib.suppress(ValueError):
        sys.path.remove(os.getcwd())
    return enter_bundle(working_dir, parent=parent)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__name__}", description="A job driver that waits for its run."
    )
    parser.add_argument("--socket", required=True, help="the Unix socket to wait on")
    return parser


if __name__ == "__main__":
    sys.exit(main())
