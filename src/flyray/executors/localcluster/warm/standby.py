"""Standby drivers: a warm cluster keeps the driver of its next job started ahead of the run.

Before a job's task starts, Ray starts a job supervisor (an actor: a new worker process), the
supervisor starts the driver (a Python that imports flyray and Ray), the driver connects, and
the job's first tasks wait for worker processes to start: most of a warm run, and none of it
depends on the run but its code bundle. So a warm cluster keeps one job submitted ahead whose
driver (``standby_driver``) has done all that and waits; a run's submission is handed to it
(``StandbyJobs``), and the attempt records the standby's submission id. The job has the
runtime env, driver and logs it would have had:

- a standby submitted with the run's code bundle (``working_dir``) is connected and has its
  workers up: the run's entrypoint runs at once;
- one submitted with another bundle, or none, makes the run's bundle the job's
  ``working_dir`` and runs the entrypoint, which connects and starts workers as usual.

Each run that used the cluster submits the next standby with its own runtime env (so the next
run of the same code finds it ready), once its job has ended (not while it runs: the standby's
start-up would take CPU from it); ``flyray cluster up`` submits the first, without a bundle.
The runtime env is the warm cluster's (part of its key, the same for every run on it) plus the
bundle. A run that finds no standby, or whose hand-over fails, submits its job as before.

Files in ``<cluster temp dir>/standby/`` (mode 0700; the cluster's temp dir goes when it stops):

    <id>.json    a submitted standby: submission id and runtime env, written by its submitter
    <id>.sock    its driver's socket, there once the driver waits
    <id>.claimed a standby a run has taken: runs claim one by renaming its .json (atomic)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyray.errors import FlyrayError
from flyray.executors.base import ProgressCallback
from flyray.plugins.ray.envsetup import building

__all__ = [
    "Standby",
    "StandbyJobs",
    "claim",
    "folder_of",
    "hand_over",
    "keep_one_ready",
    "standby_jobs",
    "submit_standby",
    "unclaimed",
]

DRIVER_MODULE = "flyray.executors.localcluster.warm.standby_driver"
READY_TIMEOUT_S = 60.0  # how long a run waits for a claimed standby's driver to get ready
SOCKET_POLL_S = 0.02  # how often it looks for the driver's socket meanwhile,
STATUS_POLL_S = 1.0  # and how often it asks whether the standby's job has ended instead
BUILDING_EVERY_S = 5.0  # how often a wait for a standby whose runtime env Ray builds says so
REPLY_TIMEOUT_S = 10.0  # how long the driver may take to take the run
_PER_RUN = "working_dir"  # the runtime-env field that differs between runs on a warm cluster


@dataclass(frozen=True)
class Standby:
    """A submitted standby job: its submission id, runtime env and folder."""

    submission_id: str
    runtime_env: dict[str, Any]
    folder: Path

    @property
    def socket(self) -> Path:
        """Where its driver waits for a run."""
        return self.folder / f"{self.submission_id}.sock"

    @property
    def working_dir(self) -> str | None:
        """The code bundle it was submitted with (its driver is connected, its workers up)."""
        return self.runtime_env.get(_PER_RUN)

    def serves(self, runtime_env: Mapping[str, Any]) -> bool:
        """Whether it can run a job with ``runtime_env``: the same but for ``working_dir``."""
        return _shared(self.runtime_env) == _shared(runtime_env)


def folder_of(temp_dir: str | os.PathLike[str]) -> Path:
    """The standby folder of a warm cluster whose temp dir is ``temp_dir``."""
    return Path(temp_dir) / "standby"


def submit_standby(client: Any, temp_dir: str, runtime_env: Mapping[str, Any]) -> Standby:
    """Submit a standby job to the cluster behind ``client``, with ``runtime_env``."""
    folder = folder_of(temp_dir)
    folder.mkdir(mode=0o700, exist_ok=True)
    standby = Standby(f"flyray-standby-{secrets.token_hex(6)}", dict(runtime_env), folder)
    marker = folder / f"{standby.submission_id}.json"
    temp = folder / f"{marker.name}.tmp"
    text = json.dumps({"submission_id": standby.submission_id, "runtime_env": runtime_env})
    temp.write_text(text)
    entrypoint = ["python", "-m", DRIVER_MODULE, "--socket", str(standby.socket)]
    try:
        client.submit_job(
            entrypoint=shlex.join(entrypoint),
            runtime_env=dict(runtime_env),
            submission_id=standby.submission_id,
        )
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    os.replace(temp, marker)  # claimable only once Ray has the job
    return standby


def unclaimed(temp_dir: str) -> list[Standby]:
    """The submitted standbys of the cluster that no run has claimed, oldest first."""
    folder, found = folder_of(temp_dir), []
    for marker in sorted(folder.glob("*.json"), key=_mtime):
        try:
            data = json.loads(marker.read_text())
        except (OSError, ValueError):  # claimed meanwhile
            continue
        found.append(Standby(data["submission_id"], data["runtime_env"], folder))
    return found


def keep_one_ready(
    client: Any, temp_dir: str, runtime_env: Mapping[str, Any], report: ProgressCallback
) -> None:
    """Submit a standby with ``runtime_env`` unless one that serves it waits; failures said."""
    if any(standby.serves(runtime_env) for standby in unclaimed(temp_dir)):
        return
    try:
        standby = submit_standby(client, temp_dir, runtime_env)
    except (FlyrayError, OSError) as exc:
        report(f"no standby driver for the next run ({exc}); it submits its own job")
        return
    report(f"standby driver for the next run: job {standby.submission_id}")


def claim(temp_dir: str, runtime_env: Mapping[str, Any]) -> Standby | None:
    """Take a submitted standby that serves ``runtime_env`` (no other run gets it), or None.

    One submitted with the same code bundle comes first: its workers are up for that code.
    """
    found = [standby for standby in unclaimed(temp_dir) if standby.serves(runtime_env)]
    found.sort(key=lambda standby: standby.working_dir != runtime_env.get(_PER_RUN))
    for standby in found:
        marker = standby.folder / f"{standby.submission_id}.json"
        try:
            os.rename(marker, marker.with_suffix(".claimed"))
        except FileNotFoundError:  # another run took it first
            continue
        return standby
    return None


def hand_over(
    standby: Standby,
    client: Any,
    message: Mapping[str, Any],
    report: ProgressCallback | None = None,
) -> str | None:
    """Give ``message`` (attempt, argv, working_dir) to the standby's driver; why not, or None.

    Waits for the driver to be ready while its job goes on. A standby that could not take the
    run is stopped: it was claimed, so it would wait for nobody.
    """
    try:
        why = _wait_ready(standby, client, report or (lambda line: None))
        if why is None:
            why = _send(standby.socket, message)
    finally:
        (standby.folder / f"{standby.submission_id}.claimed").unlink(missing_ok=True)
    if why is not None:
        with contextlib.suppress(FlyrayError, OSError):
            client.stop_job(standby.submission_id)
    return why


class StandbyJobs:
    """A Jobs client that hands a run's submission to a standby driver when there is one.

    Every other call goes to ``client``. ``submit_job`` returns the submission id the job
    runs under: the standby's, or the one asked for.
    """

    def __init__(self, client: Any, temp_dir: str, report: ProgressCallback) -> None:
        self.client, self.temp_dir, self.report = client, temp_dir, report
        self.runtime_env: dict[str, Any] | None = None  # the last submission's

    def submit_job(
        self, *, entrypoint: str, runtime_env: dict[str, Any], submission_id: str
    ) -> str:
        """Hand the job to a standby driver, else submit it; its submission id."""
        self.runtime_env = runtime_env
        standby = claim(self.temp_dir, runtime_env) if _PER_RUN in runtime_env else None
        if standby is not None:
            message = {
                "attempt": submission_id,
                "argv": shlex.split(entrypoint),
                "working_dir": runtime_env[_PER_RUN],
            }
            why = hand_over(standby, self.client, message, self.report)
            if why is None:
                self.report(f"job {submission_id} runs as standby job {standby.submission_id}")
                return standby.submission_id
            self.report(f"standby job {standby.submission_id} not used ({why})")
        return self.client.submit_job(
            entrypoint=entrypoint, runtime_env=runtime_env, submission_id=submission_id
        )

    def get_job_status(self, submission_id: str) -> Any:
        """The job's ``JobStatus``."""
        return self.client.get_job_status(submission_id)

    def get_job_logs(self, submission_id: str) -> str:
        """The job's driver log so far."""
        return self.client.get_job_logs(submission_id)

    def get_job_info(self, submission_id: str) -> Any:
        """The job's details."""
        return self.client.get_job_info(submission_id)

    def stop_job(self, submission_id: str) -> bool:
        """Ask Ray to stop the job."""
        return self.client.stop_job(submission_id)


@contextlib.contextmanager
def standby_jobs(client: Any, temp_dir: str, report: ProgressCallback) -> Iterator[StandbyJobs]:
    """``client`` as a ``StandbyJobs``; when the block ends normally, a standby is left ready.

    It is submitted with the run's runtime env, code bundle included, so that the next run
    of the same code finds Ray and the workers up. After an exception (Ctrl-C, a cluster that
    stopped answering) none is submitted.
    """
    jobs = StandbyJobs(client, temp_dir, report)
    yield jobs
    if jobs.runtime_env is not None:
        keep_one_ready(client, temp_dir, jobs.runtime_env, report)


# -- helpers -------------------------------------------------------------------------------


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _shared(runtime_env: Mapping[str, Any]) -> str:
    """A runtime env without its per-run ``working_dir``, as canonical JSON."""
    shared = {key: value for key, value in runtime_env.items() if key != _PER_RUN}
    return json.dumps(shared, sort_keys=True)


def _wait_ready(standby: Standby, client: Any, report: ProgressCallback) -> str | None:
    """Wait for the driver's socket while its job goes on; why it will not come, or None.

    While the job is PENDING with pip/uv/conda in its runtime env, Ray is building that env:
    the wait says so and does not count towards READY_TIMEOUT_S (a large install may take
    minutes, and giving up would only start the same build again).
    """
    began = time.monotonic()
    deadline = began + READY_TIMEOUT_S
    status_due, building_due = 0.0, began + BUILDING_EVERY_S
    installs = building(standby.runtime_env)
    while not standby.socket.exists():
        now = time.monotonic()
        if now > deadline:
            return f"its driver was not ready after {READY_TIMEOUT_S:g} s"
        if now >= status_due:
            status = client.get_job_status(standby.submission_id)
            if status.is_terminal():
                return f"its job ended {status.value}"
            if installs and status.value == "PENDING":
                deadline = time.monotonic() + READY_TIMEOUT_S
                if now >= building_due:
                    report(
                        f"standby job {standby.submission_id} PENDING: Ray is building its "
                        f"runtime env ({installs}), {now - began:.0f} s"
                    )
                    building_due = now + BUILDING_EVERY_S
            status_due = now + STATUS_POLL_S
        time.sleep(SOCKET_POLL_S)
    return None


def _send(path: Path, message: Mapping[str, Any]) -> str | None:
    """Send ``message`` to the driver at ``path``; why it was not taken, or None."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(REPLY_TIMEOUT_S)
            conn.connect(str(path))
            conn.sendall(json.dumps(message).encode() + b"\n")
            reply = json.loads(conn.makefile("rb").readline() or b"{}")
    except (OSError, ValueError) as exc:
        return f"its driver did not answer: {exc}"
    if reply.get("ok") is not True:
        return f"its driver refused the run: {reply.get('error')}"
    return None
