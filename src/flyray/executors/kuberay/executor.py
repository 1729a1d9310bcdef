"""``kuberay`` mode: the task's RayJob, created on Kubernetes and followed to its end.

Preflight first (run store, KubeRay CRD, RBAC, image, server-side dry run), then the RayJob
is created and followed with a watch; the submitter pod's log streams to ``on_log`` and is
stored with the run. The run's outputs or error come back through the run store. Once the
RayJob has ended, or on Ctrl-C or any error, flyray deletes it (foreground: the operator stops
the Ray job and deletes its cluster); ``detach`` leaves it running, and ``flyray cancel``
deletes it then. A RayJob whose spec keeps its cluster for a while after the job
(``shutdownAfterJobFinishes`` with ``ttlSecondsAfterFinished``, as the spec's example does) is
left to KubeRay, which deletes the cluster after the TTL; the RayJob object stays with its
status until ``flyray cancel``. Kubernetes errors become flyray errors in ``kube.errors``.

A task whose config names an existing cluster (``address=``) has no cluster to create: it runs
as a plain batch Job (one pod, ``manifest.job``) that connects to that address, followed and
deleted the same way; ``_Model`` holds what differs between the two kinds of object.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from flyray.config.settings import Settings
from flyray.errors import SubmissionError
from flyray.executors.base import LogCallback, ProgressCallback, RunOptions
from flyray.executors.jobs.executor import JobExecutor, JobRun, no_interrupts, refreshed_status
from flyray.executors.kuberay import jobstatus
from flyray.executors.kuberay import status as rayjob_status
from flyray.executors.kuberay.session import JOBS, RAYJOBS, KubeSession, ObjectKind
from flyray.executors.kuberay.warm import collect_idle, ensure_cluster, touch
from flyray.executors.kuberay.watch import ClusterReadiness, ObjectWatch, wait_deleted
from flyray.manifest.job import ADDRESS_ANNOTATION
from flyray.store.record import Attempt, RunRecord, RunStatus, utc_now
from flyray.store.runstore import RunStore
from flyray.task.base import FunctionTask

__all__ = ["KubeRayExecutor", "cancel_run", "list_kube_runs", "refresh_run", "run_object"]

LOG_GRACE_S = 15.0  # how long the submitter pod may take to finish its log after the job ends
DELETE_WAIT_S = 60.0  # how long to wait for a deleted RayJob (and its cluster) to be gone
INTERRUPTED_DELETE_WAIT_S = 15.0  # the same after Ctrl-C or an error: the user is waiting
CANCELLED = "cancelled with `flyray cancel`"
MANAGED_BY_SELECTOR = "app.kubernetes.io/managed-by=flyray"


@dataclass(frozen=True)
class _Model:
    """What the executor needs to know of one kind of object a run is (RayJob or batch Job)."""

    kind: ObjectKind
    record_key: str  # the key of the object's name in ``RunRecord.cluster``
    snapshot: Callable[[dict[str, Any]], Any]
    progress: Callable[..., list[str]]
    failure_error: Callable[..., Any]


_MODELS = (
    _Model(
        RAYJOBS,
        "rayjob",
        rayjob_status.Snapshot.of,
        rayjob_status.progress,
        rayjob_status.failure_error,
    ),
    _Model(JOBS, "job", jobstatus.JobSnapshot.of, jobstatus.progress, jobstatus.failure_error),
)


def _model_of(manifest: dict[str, Any]) -> _Model:
    return next(model for model in _MODELS if model.kind.kind == manifest["kind"])


def run_object(record: RunRecord) -> tuple[_Model, str] | None:
    """The model and name of the object a kuberay run created, if it got that far."""
    for model in _MODELS:
        if record.cluster.get(model.record_key):
            return model, record.cluster[model.record_key]
    return None


class KubeRayExecutor(JobExecutor):
    """Runs a Ray task as a KubeRay RayJob on a transient RayCluster."""

    mode = "kuberay"
    options = frozenset({"detach"})

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        on_log: LogCallback | None = None,
        detach: bool = False,
    ) -> None:
        super().__init__(settings, on_log=on_log)
        self.detach = detach
        self._session: KubeSession | None = None
        self._clusters: dict[str, dict[str, Any]] = {}  # run id -> its reusable RayCluster

    def session(self) -> KubeSession:
        """The Kubernetes session of this executor's settings (context, namespace)."""
        if self._session is None or self._session.closed:
            self._session = KubeSession(
                context=self.settings.context, namespace=self.settings.namespace
            )
        return self._session

    def check(self, task: FunctionTask) -> None:
        """Before anything is written: the run store must reach the cluster, kubeconfig load."""
        from flyray.executors.kuberay.preflight import check_run_store

        check_run_store(self.store, shared=self.settings.shared_run_store)
        self.session()

    def render(
        self, task: FunctionTask, run_id: str, options: RunOptions | None = None
    ) -> dict[str, Any]:
        """The RayJob (with ``address=``, the batch Job), in the session's namespace.

        With a reused cluster (``reuse_cluster`` or ``reusable=``), the RayJob selects a
        reusable RayCluster (made in ``wait``).
        """
        from flyray.executors.render import render_kube_manifest
        from flyray.manifest.raycluster import render_raycluster, select_cluster

        manifest = render_kube_manifest(
            task,
            run_id=run_id,
            store=self.store,
            settings=self.settings,
            namespace=self.session().namespace,
            options=options,
        )
        if not task.reuses_cluster:
            return manifest
        cluster = render_raycluster(manifest)
        self._clusters[run_id] = cluster
        return select_cluster(manifest, cluster["metadata"]["name"])

    def wait(self, run_id: str, *, on_progress: ProgressCallback | None = None) -> RunStatus:
        """Preflight, create the RayJob, follow it to its end and delete it (unless detached)."""
        from flyray.executors.kuberay.preflight import preflight

        run = self._runs[run_id]
        report = on_progress or (lambda message: None)
        session = self.session()
        name = run.manifest["metadata"]["name"]
        where = {"namespace": session.namespace, _model_of(run.manifest).record_key: name}
        context = {"context": session.context} if session.context else {}
        self.update(run, cluster={**where, **context})
        cluster = self._clusters.get(run_id)
        try:
            preflight(session, run.manifest, report=report)
            if cluster is not None:
                self._reuse(session, cluster, run.task, report)
        except BaseException as exc:  # nothing was created yet
            if isinstance(exc, KeyboardInterrupt):
                run.error = exc
                self.update(run, status=RunStatus.STOPPED, message="interrupted (Ctrl-C)")
            else:
                self._failed(run, exc)
            session.close()
            raise
        try:
            return _Follower(self, run, session, report).run()
        finally:
            if cluster is not None:  # its idle time starts now
                with contextlib.suppress(SubmissionError):
                    idle = self._idle_timeout(run.task)
                    touch(session, cluster["metadata"]["name"], idle_timeout=idle)
            session.close()

    def _idle_timeout(self, task: FunctionTask) -> float:
        """The task's ``ReusePolicy.idle_ttl``, else the ``cluster_idle_timeout`` setting."""
        policy = task.env.reusable
        return policy.idle_ttl.total_seconds() if policy else self.settings.cluster_idle_timeout

    def _reuse(
        self, session: KubeSession, cluster: dict[str, Any], task: FunctionTask, report: Any
    ) -> None:
        """Delete idle reusable clusters, then find or create this run's."""
        with contextlib.suppress(SubmissionError):  # collecting is opportunistic
            collect_idle(session, report=report)
        ensure_cluster(session, cluster, idle_timeout=self._idle_timeout(task), report=report)

    def result(self, run_id: str) -> Any:
        """The return value; a detached run has none yet (see ``flyray runs show``)."""
        run = self._runs[run_id]
        if run.record.status is RunStatus.RUNNING and run.error is None:
            return None
        return super().result(run_id)

    def refresh(self, run_id: str) -> RunStatus:
        """A detached run's status from its RayJob (or Job); once failed, its error is kept."""
        run = self._runs[run_id]
        run.record = refresh_run(self.store, self.store.load_record(run_id))  # e.g. cancelled
        return refreshed_status(self.store, run)

    def cancel(self, run_id: str) -> None:
        """Delete the run's RayJob (or Job) if it has one (e.g. detached); else as any job run."""
        run = self._runs[run_id]
        if run_object(run.record) and not run.record.status.is_terminal():
            run.record, _ = cancel_run(self.store, run.record)
        else:
            super().cancel(run_id)

    def _failed(self, run: JobRun, exc: BaseException) -> None:
        run.error = exc
        self.update(run, status=RunStatus.FAILED, message=str(exc), ended_at=utc_now())


class _Follower:
    """One run's RayJob (or Job) from creation to deletion: progress, attempts, logs, outcome."""

    def __init__(
        self, executor: KubeRayExecutor, run: JobRun, session: KubeSession, report: Any
    ) -> None:
        from flyray.executors.kuberay.logs import SubmitterLogs

        report = _NoRepeats(report)  # readiness comes from the RayJob and its RayCluster
        self.executor, self.run_, self.session, self.report = executor, run, session, report
        self.model = _model_of(run.manifest)
        self.name = run.manifest["metadata"]["name"]
        self.ref = session.ref(self.model.kind, self.name)
        self.logs = SubmitterLogs(session, self.name, executor.on_log, on_waiting=report)
        self.readiness = ClusterReadiness(session, report)
        self.started = time.monotonic()

    def run(self) -> RunStatus:
        executor, run = self.executor, self.run_
        try:
            self.session.create(self.model.kind, run.manifest)
            executor.update(run, status=RunStatus.RUNNING, started_at=utc_now())
            self.report(f"created {self.ref}")
            if executor.detach:
                return self._detached()
            final = self._follow()
            with no_interrupts():
                return self._finish(final)
        except KeyboardInterrupt as exc:
            with no_interrupts():
                run.error = exc
                self._clean_up(interrupted=True, wait=INTERRUPTED_DELETE_WAIT_S)
                executor.update(
                    run,
                    status=RunStatus.STOPPED,
                    message="interrupted (Ctrl-C)",
                    ended_at=utc_now(),
                )
            raise
        except Exception as exc:
            with no_interrupts():
                self._clean_up(wait=INTERRUPTED_DELETE_WAIT_S)
                executor._failed(run, exc)
            raise

    def _follow(self) -> Any:
        """Follow the object until it has ended; its last state (a snapshot)."""
        previous = None
        watch = ObjectWatch(self.session, self.name, kind=self.model.kind)
        with contextlib.closing(iter(watch)) as events:
            for event, obj in events:
                if event == "DELETED":
                    raise SubmissionError(
                        f"{self.ref} was deleted by someone else while run "
                        f"{self.run_.record.run_id} was going on; the run is lost"
                    )
                current = self.model.snapshot(obj)
                elapsed = time.monotonic() - self.started
                for line in self.model.progress(previous, current, elapsed=elapsed):
                    self.report(line)
                self._track(current)
                if current.deployment == "Initializing" and current.cluster:
                    self.readiness.follow(current.cluster)
                else:
                    self.readiness.stop()
                if current.has_started():
                    self.logs.start()
                self.logs.nudge()
                previous = current
                if current.is_terminal():
                    return current
        raise AssertionError("unreachable: the watch only ends with DELETED")  # pragma: no cover

    def _track(self, snapshot: Any) -> None:
        """Keep the record's attempts and cluster in step with the RayJob."""
        record = self.run_.record
        changed = track_attempts(record, snapshot)
        for key, value in (("raycluster", snapshot.cluster), ("dashboard_url", snapshot.dashboard)):
            if value and record.cluster.get(key) != value:
                record.cluster[key], changed = value, True
        if changed:
            self.executor.update(self.run_)

    def _finish(self, final: Any) -> RunStatus:
        """The object has ended: keep its log, read the outcome, delete it (or keep it: TTL)."""
        run, store = self.run_, self.executor.store
        run_id = run.record.run_id
        ttl = kept_for(run.manifest)
        if ttl:
            self._keep(ttl)
        else:
            self._clean_up(wait=DELETE_WAIT_S)
        status = final.run_status()
        if status is RunStatus.SUCCEEDED:
            run.error = None
            self.executor.update(run, status=status, message=None, ended_at=utc_now())
            return status
        run.error = self.model.failure_error(
            final,
            run_id=run_id,
            task_name=run.task.name,
            spec=run.manifest["spec"],
            error=store.read_error(run_id),
            logs=store.uri("runs", run_id, "logs", "job.log"),
        )
        self.executor.update(
            run, status=RunStatus.FAILED, message=str(run.error), ended_at=utc_now()
        )
        return RunStatus.FAILED

    def _keep(self, ttl: int) -> None:
        """Store the log and leave the RayJob: KubeRay deletes its cluster after the TTL."""
        self._store_log(interrupted=False)
        run_id = self.run_.record.run_id
        until = datetime.now(timezone.utc) + timedelta(seconds=ttl)
        self.run_.record.cluster["kept_until"] = until.isoformat(timespec="seconds")
        self.report(
            f"keeping {self.ref}: KubeRay deletes its RayCluster {ttl} s after the job ended "
            "(ttlSecondsAfterFinished), the RayJob stays with its status; `flyray cancel "
            f"{run_id}` deletes it now"
        )

    def _store_log(self, *, interrupted: bool) -> None:
        """Read the pods' logs to their end (not after Ctrl-C) and store them with the run."""
        self.readiness.stop()
        if interrupted:
            self.logs.stop()
        else:
            self.logs.finish(grace=LOG_GRACE_S)
        with contextlib.suppress(Exception):
            text = self.logs.collect()
            if text:
                self.executor.store.write_log(self.run_.record.run_id, text)

    def _clean_up(self, *, wait: float, interrupted: bool = False) -> None:
        """Store the log, then delete the object and wait (bounded) until it is gone."""
        self._store_log(interrupted=interrupted)
        kind = self.model.kind
        try:
            if not self.session.delete(kind, self.name):
                return
            gone = wait_deleted(self.session, self.name, kind=kind, timeout=wait)
        except SubmissionError as exc:
            self.report(
                f"could not delete {self.ref} ({exc}); delete it with `kubectl delete "
                f"{kind.plural}.{kind.group} -n {self.session.namespace} {self.name}`"
            )
            return
        state = "deleted" if gone else f"deleting (still there after {wait:.0f} s)"
        what = (
            "the operator stops its Ray job and deletes its cluster"
            if kind is RAYJOBS
            else "its pod is stopped"
        )
        self.report(f"{self.ref} {state}: {what}" + (" (interrupted)" if interrupted else ""))

    def _detached(self) -> RunStatus:
        run_id = self.run_.record.run_id
        self.report(
            f"detached: {self.ref} runs on; `flyray logs {run_id}` shows its log and "
            f"`flyray cancel {run_id}` deletes it"
        )
        return RunStatus.RUNNING


class _NoRepeats:
    """A progress callback that drops a line equal to the one just reported (thread-safe)."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self._report, self._last, self._lock = report, "", threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            if line == self._last:
                return
            self._last = line
        self._report(line)


def kept_for(manifest: dict[str, Any]) -> int:
    """Seconds KubeRay keeps a finished RayJob's cluster: flyray then leaves the RayJob to it.

    Only with ``shutdownAfterJobFinishes`` and a TTL, as the spec declares them; without
    shutdown the cluster would run on with nobody to stop it, so flyray deletes the RayJob.
    """
    spec = manifest["spec"]
    if manifest["kind"] != RAYJOBS.kind or not spec.get("shutdownAfterJobFinishes"):
        return 0
    return int(spec.get("ttlSecondsAfterFinished") or 0)


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
    store: RunStore, record: RunRecord, session: KubeSession, model: _Model, snapshot: Any
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
            for model in _MODELS
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
                    "run_id": (metadata.get("labels") or {}).get("flyray.io/run-id", ""),
                    "task": annotations.get("flyray.io/task-name", ""),
                    "deployment": snapshot.deployment,
                    "job": getattr(snapshot, "job_status", ""),
                    "created": metadata.get("creationTimestamp", ""),
                }
            )
    return sorted(rows, key=lambda row: row["created"], reverse=True)
