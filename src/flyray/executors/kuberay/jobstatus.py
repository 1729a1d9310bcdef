"""A batch Job's ``status`` in flyray's terms, for a task that runs on an existing Ray cluster.

The counterpart of ``kube.status`` (RayJobs) with the same reading interface, so one follower
drives both: each pod is an attempt (``backoffLimit`` makes new ones), the ``Complete`` or
``Failed`` condition ends the run. Pure functions of the Job objects the watch delivers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flyray.errors import TaskError
from flyray.executors.kuberay.status import run_error
from flyray.store.record import RunStatus

__all__ = ["JobSnapshot", "explain", "failure_error", "progress"]

_ENDED = ("Complete", "Failed")


@dataclass(frozen=True)
class JobSnapshot:
    """What flyray reads from one version of a batch Job's status.

    ``active`` counts the pods not ended yet, pending ones too; ``Running`` needs a ready pod.
    """

    name: str
    namespace: str
    deployment: str = ""  # "", "Pending", "Running", "Complete" or "Failed"
    reason: str = ""
    message: str = ""
    active: int = 0
    failed: int = 0
    succeeded: int = 0
    job_id: str = ""  # no Ray job id: the pod's driver is a Ray Client session
    cluster: str = ""  # no RayCluster of its own
    dashboard: str = ""

    @classmethod
    def of(cls, job: dict[str, Any]) -> JobSnapshot:
        """The snapshot of a Job object (a dict, as the API server sends it)."""
        metadata, status = job.get("metadata") or {}, job.get("status") or {}
        ended = next(
            (
                c
                for c in status.get("conditions") or []
                if c.get("type") in _ENDED and c.get("status") == "True"
            ),
            None,
        )
        active, ready = int(status.get("active") or 0), int(status.get("ready") or 0)
        if ended is not None:
            deployment = ended["type"]
        elif ready:
            deployment = "Running"
        else:
            deployment = "Pending" if status else ""
        return cls(
            name=metadata.get("name", ""),
            namespace=metadata.get("namespace", ""),
            deployment=deployment,
            reason=(ended or {}).get("reason") or "",
            message=(ended or {}).get("message") or "",
            active=active,
            failed=int(status.get("failed") or 0),
            succeeded=int(status.get("succeeded") or 0),
        )

    @property
    def ref(self) -> str:
        return f"Job {self.namespace}/{self.name}"

    def is_terminal(self) -> bool:
        """True once Kubernetes has given the Job its ``Complete`` or ``Failed`` condition."""
        return self.deployment in _ENDED

    def has_started(self) -> bool:
        """True once a pod may have a log to follow."""
        return bool(self.active or self.failed or self.succeeded or self.is_terminal())

    def run_status(self) -> RunStatus:
        """The run's status while this is the Job's state."""
        if self.deployment == "Complete":
            return RunStatus.SUCCEEDED
        if self.deployment == "Failed":
            return RunStatus.FAILED
        return RunStatus.RUNNING if self.has_started() else RunStatus.PENDING

    def attempt_status(self) -> RunStatus:
        """The status of the current attempt (pod)."""
        if self.is_terminal():
            return self.run_status()
        return RunStatus.RUNNING if self.deployment == "Running" else RunStatus.PENDING

    def attempt_number(self) -> int:
        """Which attempt (1-based) this state belongs to: pods ended, plus the one under way."""
        done = self.failed + self.succeeded
        return max(1, done if self.is_terminal() else done + 1)

    def attempt_ended(self) -> bool:
        return self.is_terminal()

    def user_failure(self) -> bool:
        """True when the task's own process failed, not Kubernetes (a deadline)."""
        return self.reason != "DeadlineExceeded"

    def outcome(self) -> str:
        """``reason: message``: why the Job ended."""
        return ": ".join(part for part in (self.reason, self.message) if part)


def progress(previous: JobSnapshot | None, current: JobSnapshot, *, elapsed: float) -> list[str]:
    """Lines worth telling the user about the change from ``previous`` to ``current``."""
    before = previous or JobSnapshot(name=current.name, namespace=current.namespace)
    lines = []
    if current.failed > before.failed and not current.is_terminal():
        lines.append(
            f"{current.ref}: attempt {current.failed} failed, Kubernetes starts a new pod "
            f"({elapsed:.0f} s)"
        )
    if current.deployment != before.deployment and current.deployment:
        note = {
            "Pending": "waiting for the task's pod",
            "Running": "the task's pod runs and connects to the Ray cluster",
            "Complete": "task finished",
            "Failed": f"job failed ({current.outcome()})" if current.reason else "job failed",
        }[current.deployment]
        lines.append(f"{current.ref} {current.deployment}: {note} ({elapsed:.0f} s)")
    return lines


def explain(snapshot: JobSnapshot, *, spec: dict[str, Any]) -> str:
    """Why a Job failed, in words, from its ``Failed`` condition."""
    said = f" (Kubernetes says: {snapshot.message})" if snapshot.message else ""
    if snapshot.reason == "DeadlineExceeded":
        return (
            "it passed the task's timeout (DeadlineExceeded: activeDeadlineSeconds="
            f"{spec.get('activeDeadlineSeconds')}, counted over every attempt together), so "
            "Kubernetes stopped its pod; give the task a longer timeout= if it needs more "
            f"time{said}"
        )
    if snapshot.reason == "BackoffLimitExceeded":
        attempts = int(spec.get("backoffLimit") or 0) + 1
        return (
            f"the task's pod failed {attempts} time(s) (BackoffLimitExceeded: retries="
            f"{attempts - 1}){said}"
        )
    return f"it failed ({snapshot.reason or 'no reason given'}){said}"


def failure_error(
    snapshot: JobSnapshot,
    *,
    run_id: str,
    task_name: str,
    spec: dict[str, Any],
    error: Any = None,
    logs: str | None = None,
) -> TaskError:
    """The error of a failed run: the task's own error (``ErrorInfo``) first when it raised.

    A ``DeadlineExceeded`` Job is a ``TaskTimeoutError``.
    """
    why = explain(snapshot, spec=spec)
    timed_out = snapshot.reason == "DeadlineExceeded"
    if error is None and not timed_out:
        why += (
            "; flyray's entrypoint stored no error, so the pod failed before the task ran: does "
            "the image have flyray, the same Ray and Python as the cluster, and can the pod "
            "reach the Ray address and the run store?"
        )
    return run_error(
        snapshot.ref,
        why,
        run_id=run_id,
        task_name=task_name,
        error=error,
        logs=logs,
        timed_out=timed_out,
    )
