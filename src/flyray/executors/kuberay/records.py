"""A kuberay run followed up from its record: status, log, cancel, and flyray's objects listed.

These serve runs that outlive the process that started them (``--detach``, a dead caller):
the record names the object, its namespace and context.
"""

from __future__ import annotations

from typing import Any

from flyray.config.settings import Settings
from flyray.executors.kuberay.models import MODELS, Model, run_object, track_attempts
from flyray.executors.kuberay.session import JOBS, KubeSession
from flyray.manifest.labels import (
    ADDRESS_ANNOTATION,
    MANAGED_BY_SELECTOR,
    RUN_ID_LABEL,
    TASK_NAME_ANNOTATION,
)
from flyray.store.record import RunRecord, RunStatus, utc_now
from flyray.store.runstore import RunStore

__all__ = ["CANCELLED", "cancel_run", "list_kube_runs", "refresh_run"]

CANCELLED = "cancelled with `flyray cancel`"


def refresh_run(store: RunStore, record: RunRecord) -> RunRecord:
    """Bring a kuberay run's record up to date from its RayJob or Job (status, attempts, log)."""
    found = run_object(record)
    if record.status.is_terminal() or found is None:
        return record
    model, name = found
    with _session(record) as session:
        obj = session.get(model.kind, name)
        if obj is None:
            record.status = RunStatus.STOPPED
            record.message = f"{session.ref(model.kind, name)} is gone"
            record.ended_at = utc_now()
        else:
            _refresh_from(store, record, session, model, model.snapshot(obj))
    store.save_record(record)
    return record


def cancel_run(store: RunStore, record: RunRecord) -> tuple[RunRecord, bool]:
    """Delete a kuberay run's RayJob or Job (its log stored first); (record, whether deleted).

    A run that was still going is recorded as STOPPED.
    """
    record = refresh_run(store, record)
    found = run_object(record)
    if found is None:
        return record, False
    model, name = found
    with _session(record) as session:
        _store_log(store, record, session, name)
        deleted = session.delete(model.kind, name)
    if not record.status.is_terminal():
        record.status = RunStatus.STOPPED
        record.message = CANCELLED
        record.ended_at = utc_now()
        for attempt in record.attempts:
            if not attempt.status.is_terminal():
                attempt.status, attempt.message = RunStatus.STOPPED, CANCELLED
                attempt.ended_at = record.ended_at
        store.save_record(record)
    return record, deleted


def _refresh_from(
    store: RunStore, record: RunRecord, session: KubeSession, model: Model, snapshot: Any
) -> None:
    track_attempts(record, snapshot)
    for key, value in (("raycluster", snapshot.cluster), ("dashboard_url", snapshot.dashboard)):
        if value:
            record.cluster[key] = value
    _store_log(store, record, session, snapshot.name)
    record.status = snapshot.run_status()
    if record.status is RunStatus.PENDING:
        record.status = RunStatus.RUNNING  # created, so under way
    if snapshot.is_terminal():
        record.ended_at = record.ended_at or utc_now()
        if record.status is RunStatus.FAILED:
            manifest = _stored_manifest(store, record.run_id)
            error = model.failure_error(
                snapshot,
                run_id=record.run_id,
                task_name=record.task,
                spec=manifest.get("spec", {}),
                error=store.read_error(record.run_id),
            )
            record.message = str(error)


def _store_log(store: RunStore, record: RunRecord, session: KubeSession, name: str) -> None:
    from flyray.executors.kuberay.logs import SubmitterLogs

    text = SubmitterLogs(session, name, None).collect()
    if text:
        store.write_log(record.run_id, text)


def _stored_manifest(store: RunStore, run_id: str) -> dict[str, Any]:
    import yaml

    text = store.read_manifest(run_id)
    return (yaml.safe_load(text) if text else None) or {}


def _session(record: RunRecord) -> KubeSession:
    return KubeSession(
        context=record.cluster.get("context") or None, namespace=record.cluster["namespace"]
    )


def list_kube_runs(settings: Settings) -> list[dict[str, str]]:
    """flyray's RayJobs and Jobs in the settings' namespace, found by label, newest first.

    They include runs this machine's run store does not know (started elsewhere, or whose
    caller died): each row says the object's kind and name, run id, task and statuses.
    """
    with KubeSession(context=settings.context, namespace=settings.namespace) as session:
        found = {
            model: session.list_objects(model.kind, label_selector=MANAGED_BY_SELECTOR)
            for model in MODELS
        }
    rows = []
    for model, listed in found.items():
        for item in listed.get("items") or []:
            metadata = item.get("metadata") or {}
            annotations = metadata.get("annotations") or {}
            if model.kind is JOBS and ADDRESS_ANNOTATION not in annotations:
                continue  # a Job flyray did not create itself (e.g. a RayJob's submitter)
            snapshot = model.snapshot(item)
            rows.append(
                {
                    "kind": model.kind.kind,
                    "name": metadata.get("name", ""),
                    "run_id": (metadata.get("labels") or {}).get(RUN_ID_LABEL, ""),
                    "task": annotations.get(TASK_NAME_ANNOTATION, ""),
                    "deployment": snapshot.deployment,
                    "job": getattr(snapshot, "job_status", ""),
                    "created": metadata.get("creationTimestamp", ""),
                }
            )
    return sorted(rows, key=lambda row: row["created"], reverse=True)
