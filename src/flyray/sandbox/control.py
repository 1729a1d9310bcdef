"""Start, stop and inspect the sandbox from the CLI: the supervisor runs on, detached.

``up`` starts ``python -m flyray.sandbox.serve`` in a session of its own and relays its
progress lines until ``state.json`` says it is ready (or it exits, quoting its log); ``down``
sends it SIGTERM and waits until its control plane folder is gone; ``status`` reads the state
and asks the API server what runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flyray.errors import SandboxError
from flyray.sandbox.owner import Owner, clean
from flyray.sandbox.state import (
    LOG_FILE,
    PID_FILE,
    READY_LINE,
    STATE_FILE,
    SandboxState,
    Supervisor,
)

__all__ = ["preflight", "sandbox_status", "start_sandbox", "stop_sandbox"]

START_TIMEOUT_S = 3600.0  # a cold build of the binaries takes ~17 min on two cores
STOP_TIMEOUT_S = 120.0


def preflight() -> None:
    """``SandboxError`` saying what is missing when pods cannot run on this machine."""
    from flyray.sandbox.pods.net import netns_available

    if os.geteuid() != 0:
        raise SandboxError(
            "the sandbox needs root: it makes a network namespace per pod (ip netns) and "
            "mounts a private /tmp in each (unshare); run it as root (sudo -E flyray sandbox "
            "up), or in a VM or container where you are root"
        )
    missing = netns_available()
    if missing:
        raise SandboxError(f"the sandbox cannot run pods here: {missing}")


def start_sandbox(
    folder: Path,
    *,
    say: Callable[[str], None],
    tick: Callable[[], None] = lambda: None,
    timeout: float = START_TIMEOUT_S,
) -> SandboxState:
    """Start the sandbox in ``folder`` (or find it running); its state once ready.

    ``say`` gets each line of the supervisor's progress, ``tick`` is called while it waits.
    """
    supervisor = Supervisor.read(folder)
    if supervisor is not None and supervisor.alive():
        state = SandboxState.read(folder)
        if state is not None:
            return state
        raise SandboxError(
            f"a sandbox is starting already (pid {supervisor.pid}); see {folder / LOG_FILE}"
        )
    preflight()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / LOG_FILE
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flyray.sandbox.serve", str(folder)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # it outlives this command, until `flyray sandbox down`
        )
    Supervisor.of(process.pid).write(folder)
    try:
        return _await_ready(folder, process, say, tick, timeout)
    except BaseException:
        say("sandbox: stopping what started")
        stop_sandbox(folder, say=say)
        raise


def _await_ready(
    folder: Path,
    process: subprocess.Popen[bytes],
    say: Callable[[str], None],
    tick: Callable[[], None],
    timeout: float,
) -> SandboxState:
    log = folder / LOG_FILE
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        lines = log.read_text(errors="replace").splitlines()
        for line in lines[seen:]:
            say(line)
        seen = len(lines)
        state = SandboxState.read(folder)
        if state is not None and READY_LINE in lines:
            return state
        if process.poll() is not None:
            tail = "\n".join(lines[-30:])
            raise SandboxError(
                f"the sandbox did not start (its supervisor exited {process.returncode}); "
                f"the end of {log}:\n{tail}"
            )
        if time.monotonic() > deadline:
            raise SandboxError(f"the sandbox was not ready after {timeout:.0f} s; see {log}")
        tick()
        time.sleep(0.2)


def stop_sandbox(
    folder: Path, *, say: Callable[[str], None], timeout: float = STOP_TIMEOUT_S
) -> bool:
    """Stop the sandbox and wait until nothing of it is left; False when none was running."""
    supervisor = Supervisor.read(folder)
    controlplane = folder / "controlplane"
    running = supervisor is not None and supervisor.alive()
    if running:
        assert supervisor is not None
        os.kill(supervisor.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while supervisor.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if supervisor.alive():
            say(
                f"sandbox: supervisor {supervisor.pid} ignored SIGTERM for {timeout:.0f} s; "
                "killing it (its watchdog removes the rest)"
            )
            os.kill(supervisor.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while controlplane.exists() and Owner(controlplane).owner() is not None:
        if time.monotonic() > deadline:
            say(f"sandbox: removing what the watchdog left in {controlplane}")
            clean(controlplane)
            break
        time.sleep(0.2)
    for name in (PID_FILE, STATE_FILE, "kubeconfig"):  # the kubeconfig holds a dead token
        (folder / name).unlink(missing_ok=True)
    return running


def sandbox_status(folder: Path) -> dict[str, Any]:
    """What runs: the supervisor, how to reach it, and the pods and RayJobs it holds."""
    supervisor = Supervisor.read(folder)
    state = SandboxState.read(folder)
    if supervisor is None or not supervisor.alive():
        return {"running": False}
    status: dict[str, Any] = {"running": True, "pid": supervisor.pid, "ready": state is not None}
    if state is None:
        return status
    status.update(state=state, uptime_s=time.time() - state.started_at)
    try:
        status.update(_cluster_contents(state))
    except Exception as exc:  # the API server does not answer: say so, do not fail
        status["error"] = f"the API server did not answer: {exc}"
    return status


def _cluster_contents(state: SandboxState) -> dict[str, Any]:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=state.kubeconfig)
    with api:
        pods = client.CoreV1Api(api).list_namespaced_pod(state.namespace, _request_timeout=5)
        rayjobs = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "ray.io", "v1", state.namespace, "rayjobs", _request_timeout=5
        )
    return {
        "pods": [(pod.metadata.name, pod.status.phase) for pod in pods.items],
        "rayjobs": [
            (job["metadata"]["name"], (job.get("status") or {}).get("jobDeploymentStatus", ""))
            for job in rayjobs["items"]
        ],
    }
