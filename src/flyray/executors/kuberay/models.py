"""The two kinds of object a kuberay run is (a RayJob, or a batch Job for ``address=``).

``Model`` holds what differs between them (kind, record key, how to read its status); a
run's record keeps its attempts in step with the object's status through ``track_attempts``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flyray.executors.kuberay import jobstatus
from flyray.executors.kuberay import status as rayjob_status
from flyray.executors.kuberay.session import JOBS, RAYJOBS, ObjectKind
from flyray.store.record import Attempt, RunRecord, RunStatus, utc_now

__all__ = ["MODELS", "Model", "model_of", "run_object", "track_attempts"]


@dataclass(frozen=True)
class Model:
    """What the executor needs to know of one kind of object a run is (RayJob or batch Job)."""

    kind: ObjectKind
    record_key: str  # the key of the object's name in ``RunRecord.cluster``
    snapshot: Callable[[dict[str, Any]], Any]
    progress: Callable[..., list[str]]
    failure_error: Callable[..., Any]


MODELS = (
    Model(
        RAYJOBS,
        "rayjob",
        rayjob_status.Snapshot.of,
        rayjob_status.progress,
        rayjob_status.failure_error,
    ),
    Model(JOBS, "job", jobstatus.JobSnapshot.of, jobstatus.progress, jobstatus.failure_error),
)


def model_of(manifest: dict[str, Any]) -> Model:
    return next(model for model in MODELS if model.kind.kind == manifest["kind"])


def run_object(record: RunRecord) -> tuple[Model, str] | None:
    """The model and name of the object a kuberay run created, if it got that far."""
    for model in MODELS:
        if record.cluster.get(model.record_key):
            return model, record.cluster[model.record_key]
    return None


def track_attempts(record: RunRecord, snapshot: Any) -> bool:
    """Bring ``record.attempts`` in line with the object's state; True if anything changed."""
    if not snapshot.deployment:
        return False
    before = [attempt.to_dict() for attempt in record.attempts]
    number = snapshot.attempt_number()
    while len(record.attempts) < number:
        if record.attempts and not record.attempts[-1].status.is_terminal():
            record.attempts[-1].status = RunStatus.FAILED
            record.attempts[-1].ended_at = utc_now()
        record.attempts.append(Attempt(number=len(record.attempts) + 1, started_at=utc_now()))
    attempt = record.attempts[number - 1]
    attempt.submission_id = snapshot.job_id or attempt.submission_id
    attempt.status = snapshot.attempt_status()
    if snapshot.attempt_ended():
        attempt.ended_at = attempt.ended_at or utc_now()
        if attempt.status is RunStatus.FAILED:
            attempt.message = snapshot.outcome()
            attempt.error_kind = "user" if snapshot.user_failure() else "infrastructure"
    return [attempt.to_dict() for attempt in record.attempts] != before
