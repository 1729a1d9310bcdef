"""A RayJob's ``status`` in flyray's terms: progress lines, run status, the error of a failure.

Pure functions of the RayJob objects the watch delivers (``../shared/kuberay/README.md`` says
how KubeRay fills them), so each message can be tested without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flyray.errors import TaskError, TaskTimeoutError
from flyray.store.record import RunStatus

__all__ = [
    "ENDED",
    "TERMINAL",
    "Snapshot",
    "explain",
    "failure_error",
    "progress",
    "readiness",
    "readiness_line",
    "run_error",
]

TERMINAL = frozenset({"Complete", "Failed", "ValidationFailed"})  # the operator is done
ENDED = TERMINAL | {"Retrying"}  # an attempt is over
_ATTEMPT_STATUS = {
    "Running": RunStatus.RUNNING,
    "Complete": RunStatus.SUCCEEDED,
    "Failed": RunStatus.FAILED,
    "ValidationFailed": RunStatus.FAILED,
    "Retrying": RunStatus.FAILED,
}
_DEPLOYMENT_NOTES = {
    "Initializing": "creating the Ray cluster",
    "Running": "cluster ready, job submitted",
    "Complete": "job finished",
    "Failed": "job failed",
    "ValidationFailed": "the operator refused the spec",
    "Retrying": "attempt failed, retrying on a new Ray cluster",
    "Suspended": "suspended",
}


@dataclass(frozen=True)
class Snapshot:
    """What flyray reads from one version of a RayJob's status."""

    name: str
    namespace: str
    deployment: str = ""
    job_status: str = ""
    reason: str = ""
    message: str = ""
    job_id: str = ""
    cluster: str = ""
    dashboard: str = ""
    head_ready: bool = False
    ready_workers: int = 0
    desired_workers: int = 0
    failed: int = 0
    succeeded: int = 0
    token_auth: bool = False  # its cluster asks for a Ray auth token (authOptions)

    @classmethod
    def of(cls, rayjob: dict[str, Any]) -> Snapshot:
        """The snapshot of a RayJob object (a dict, as the API server sends it)."""
        metadata, status = rayjob.get("metadata") or {}, rayjob.get("status") or {}
        cluster_spec = (rayjob.get("spec") or {}).get("rayClusterSpec") or {}
        head_ready, ready_workers, desired_workers = readiness(status.get("rayClusterStatus"))
        return cls(
            name=metadata.get("name", ""),
            namespace=metadata.get("namespace", ""),
            deployment=status.get("jobDeploymentStatus") or "",
            job_status=status.get("jobStatus") or "",
            reason=status.get("reason") or "",
            message=status.get("message") or "",
            job_id=status.get("jobId") or "",
            cluster=status.get("rayClusterName") or "",
            dashboard=status.get("dashboardURL") or "",
            head_ready=head_ready,
            ready_workers=ready_workers,
            desired_workers=desired_workers,
            failed=int(status.get("failed") or 0),
            succeeded=int(status.get("succeeded") or 0),
            token_auth=(cluster_spec.get("authOptions") or {}).get("mode") == "token",
        )

    @property
    def ref(self) -> str:
        return f"RayJob {self.namespace}/{self.name}"

    def is_terminal(self) -> bool:
        """True once the operator will not change the job's outcome any more."""
        return self.deployment in TERMINAL

    def has_started(self) -> bool:
        """True once the submitter pod may have a log to follow (it comes with Running)."""
        return self.deployment not in ("", "Initializing")

    def attempt_ended(self) -> bool:
        return self.deployment in ENDED

    def user_failure(self) -> bool:
        """True when the task's Ray job failed, not the cluster or the submission."""
        return self.reason == "AppFailed"

    def run_status(self) -> RunStatus:
        """The run's status while this is the RayJob's state."""
        if self.deployment == "Retrying":
            return RunStatus.RUNNING
        return _ATTEMPT_STATUS.get(self.deployment, RunStatus.PENDING)

    def attempt_status(self) -> RunStatus:
        """The status of the attempt this state belongs to."""
        return _ATTEMPT_STATUS.get(self.deployment, RunStatus.PENDING)

    def outcome(self) -> str:
        """``reason: message`` (the message's first line): why an attempt ended."""
        return ": ".join(part for part in (self.reason, _first_line(self.message)) if part)

    def attempt_number(self) -> int:
        """Which attempt (1-based) this state belongs to, from the operator's counters."""
        done = self.failed + self.succeeded
        return max(1, done if self.deployment in ENDED else done + 1)


def progress(previous: Snapshot | None, current: Snapshot, *, elapsed: float) -> list[str]:
    """Lines worth telling the user about the change from ``previous`` to ``current``."""
    before = previous or Snapshot(name=current.name, namespace=current.namespace)
    lines = []
    if current.deployment != before.deployment and current.deployment:
        note = _DEPLOYMENT_NOTES.get(current.deployment)
        detail = f": {note}" if note else ""
        if current.deployment == "Retrying" and (current.reason or current.message):
            detail += f" ({current.outcome()})"
        lines.append(f"{current.ref} {current.deployment}{detail} ({elapsed:.0f} s)")
    now = (current.head_ready, current.ready_workers, current.desired_workers)
    if current.deployment == "Initializing" and current.cluster and now != _readiness(before):
        lines.append(readiness_line(current.cluster, now))
    if current.job_status and current.job_status != before.job_status:
        job = f"Ray job {current.job_id}" if current.job_id else "Ray job"
        lines.append(f"{job} {current.job_status} ({elapsed:.0f} s)")
    if current.dashboard and current.dashboard != before.dashboard:
        lines.append(dashboard_line(current))
    return lines


def readiness(cluster_status: dict[str, Any] | None) -> tuple[bool, int, int]:
    """(head ready, ready workers, desired workers) from a RayCluster's ``status``."""
    status = cluster_status or {}
    head = any(
        c.get("type") == "HeadPodReady" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return (
        head,
        int(status.get("readyWorkerReplicas") or 0),
        int(status.get("desiredWorkerReplicas") or 0),
    )


def readiness_line(cluster: str, state: tuple[bool, int, int]) -> str:
    """``RayCluster NAME: head ready, workers 1/2 ready``."""
    head, ready, desired = state
    return (
        f"RayCluster {cluster}: head {'ready' if head else 'starting'}, "
        f"workers {ready}/{desired} ready"
    )


def dashboard_line(snapshot: Snapshot) -> str:
    """Where the Ray dashboard is, and the port-forward that reaches it from here."""
    forward = (
        f"kubectl port-forward -n {snapshot.namespace} svc/{snapshot.cluster}-head-svc 8265:8265"
        if snapshot.cluster
        else "kubectl port-forward to the head service's port 8265"
    )
    line = (
        f"Ray dashboard: http://{snapshot.dashboard} (inside the cluster); from here run "
        f"`{forward}` and open http://localhost:8265"
    )
    if snapshot.token_auth and snapshot.cluster:
        line += (
            f"; it asks for the cluster's token: `kubectl get secret -n {snapshot.namespace} "
            f"{auth_secret(snapshot.cluster)} -o jsonpath='{{.data.auth_token}}' | base64 -d`"
        )
    return line


def auth_secret(cluster: str) -> str:
    """The Secret KubeRay keeps a cluster's token in: the cluster's name, as its ``CheckName``
    shortens it (the last 50 characters, a leading digit or punctuation made ``r``)."""
    name = cluster[-50:]
    return "r" + name[1:] if name and not name[0].isalpha() else name


def explain(snapshot: Snapshot, *, spec: dict[str, Any]) -> str:
    """Why a RayJob failed, in words, from its ``reason`` and ``message``."""
    said = f" (the operator says: {_first_line(snapshot.message)})" if snapshot.message else ""
    reason = snapshot.reason
    if reason == "DeadlineExceeded":
        seconds = spec.get("activeDeadlineSeconds")
        return (
            f"it passed the task's timeout (DeadlineExceeded: activeDeadlineSeconds={seconds}, "
            "counted from when "
            "the RayJob started, cluster start-up included), so KubeRay stopped the job and "
            f"deleted its cluster; give the task a longer timeout= if it needs more time{said}"
        )
    if reason == "PreRunningDeadlineExceeded":
        seconds = spec.get("preRunningDeadlineSeconds")
        return (
            "the cluster never became ready (PreRunningDeadlineExceeded): the head and every "
            "worker pod must be Running and "
            f"Ready within preRunningDeadlineSeconds={seconds}; usual causes are an image that "
            "cannot be pulled and pods no node has room for (see `kubectl get pods -n "
            f"{snapshot.namespace} -l ray.io/cluster={snapshot.cluster or '<cluster>'}` and "
            f"`kubectl get events -n {snapshot.namespace}`){said}"
        )
    if reason == "AppFailed":
        return f"the task's Ray job failed (AppFailed){said}"
    if reason == "SubmissionFailed":
        return (
            "the submitter pod could not submit the job to the Ray cluster (SubmissionFailed): "
            "it runs `ray job submit` with the head's image, so that image needs the `ray` CLI "
            f"and must reach the head's dashboard port{said}"
        )
    if reason == "ValidationFailed" or snapshot.deployment == "ValidationFailed":
        return (
            "the KubeRay operator refused the RayJob's spec (ValidationFailed); such a RayJob "
            "never runs and must be deleted and created again: fix the configuration and run "
            f"the task again (flyray deletes the refused RayJob){said}"
        )
    if reason:
        return f"the operator gave up on it ({reason}){said}"
    return f"it ended {snapshot.deployment or 'without a status'}{said}"


def failure_error(
    snapshot: Snapshot,
    *,
    run_id: str,
    task_name: str,
    spec: dict[str, Any],
    error: Any = None,
    logs: str | None = None,
) -> TaskError:
    """The error of a failed run: the task's own error (``ErrorInfo``) first when it raised.

    A ``DeadlineExceeded`` RayJob is a ``TaskTimeoutError``.
    """
    why = explain(snapshot, spec=spec)
    if error is None and snapshot.reason == "AppFailed":
        why += (
            "; flyray's entrypoint stored no error, so the driver failed before the task ran: "
            "does the image have the same Ray and Python as here, and flyray when shipping "
            "it with the job is off (--no-ship-flyray)?"
        )
    return run_error(
        snapshot.ref,
        why,
        run_id=run_id,
        task_name=task_name,
        error=error,
        logs=logs,
        timed_out=snapshot.reason == "DeadlineExceeded",
    )


def run_error(
    ref: str,
    why: str,
    *,
    run_id: str,
    task_name: str,
    error: Any,
    logs: str | None,
    timed_out: bool,
) -> TaskError:
    """The run's error: the task's own (``ErrorInfo``) first when it raised, else ``why``.

    A timeout is a ``TaskTimeoutError`` whatever the task was doing when it was stopped.
    """
    see = f"see `flyray logs {run_id}`"
    if error is not None and not timed_out:
        message = (
            f"task {task_name} failed in run {run_id}: {error.type}: {error.message} "
            f"({ref}: {why}); {see}"
        )
    else:
        message = f"run {run_id} of task {task_name} failed: {ref}: {why}; {see}"
    traceback = getattr(error, "traceback", None)
    if timed_out:
        return TaskTimeoutError(message, run_id=run_id, remote_traceback=traceback, logs=logs)
    code = error.type if error is not None else "TaskError"
    return TaskError(message, code, run_id=run_id, remote_traceback=traceback, logs=logs)


def _readiness(snapshot: Snapshot) -> tuple[bool, int, int]:
    return snapshot.head_ready, snapshot.ready_workers, snapshot.desired_workers


def _first_line(message: str, limit: int = 300) -> str:
    """The first line of an operator message (Ray's can carry the whole log), kept short."""
    line = next((part.strip() for part in message.splitlines() if part.strip()), "")
    line = line.split(", last available logs")[0].rstrip(":")
    return line if len(line) <= limit else line[: limit - 1] + "…"
