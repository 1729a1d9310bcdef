"""``kuberay`` mode: the task's RayJob, created on Kubernetes and followed to its end.

Preflight first (run store, KubeRay CRD, RBAC, image, server-side dry run), then the RayJob
is created and followed with a watch; the submitter pod's log streams to ``on_log`` and is
stored with the run. The run's outputs or error come back through the run store. Once the
RayJob has ended, or on Ctrl-C or any error, flyray deletes it (foreground: the operator stops
the Ray job and deletes its cluster); only ``detach`` leaves it running, and ``flyray
cancel`` deletes it then. Kubernetes errors become flyray errors in ``kube.errors``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from flyray.config.settings import Settings
from flyray.errors import SubmissionError
from flyray.executors.base import LogCallback, ProgressCallback, RunStatus
from flyray.executors.jobs import JobExecutor, JobRun, no_interrupts
from flyray.executors.kube.session import KubeSession
from flyray.executors.kube.status import ENDED, Snapshot, failure_error, progress
from flyray.executors.kube.watch import ClusterReadiness, ObjectWatch, wait_deleted
from flyray.manifest.rayjob import refuse_existing_cluster
from flyray.store.record import Attempt, RunRecord, utc_now
from flyray.store.runstore import RunStore
from flyray.task.base import FunctionTask

__all__ = ["KubeRayExecutor", "cancel_run", "list_rayjobs", "refresh_run"]

LOG_GRACE_S = 15.0  # how long the submitter pod may take to finish its log after the job ends
DELETE_WAIT_S = 60.0  # how long to wait for a deleted RayJob (and its cluster) to be gone
INTERRUPTED_DELETE_WAIT_S = 15.0  # the same after Ctrl-C or an error: the user is waiting
CANCELLED = "cancelled with `flyray cancel`"
MANAGED_BY_SELECTOR = "app.kubernetes.io/managed-by=flyray"


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

    def session(self) -> KubeSession:
        """The Kubernetes session of this executor's settings (context, namespace)."""
        if self._session is None or self._session.closed:
            self._session = KubeSession(
                context=self.settings.context, namespace=self.settings.namespace
            )
        return self._session

    def check(self, task: FunctionTask) -> None:
        """Before anything is written: the run store must reach the cluster, kubeconfig load."""
        from flyray.executors.kube.preflight import check_run_store

        refuse_existing_cluster(task)
        check_run_store(self.store, shared=self.settings.shared_run_store)
        self.session()

    def render(self, task: FunctionTask, run_id: str) -> dict[str, Any]:
        """The RayJob, in the session's namespace."""
        from flyray.executors.render import render_for_run

        return render_for_run(
            task,
            run_id=run_id,
            store=self.store,
            settings=self.settings,
            namespace=self.session().namespace,
        )

    def wait(self, run_id: str, *, on_progress: ProgressCallback | None = None) -> RunStatus:
        """Preflight, create the RayJob, follow it to its end and delete it (unless detached)."""
        from flyray.executors.kube.preflight import preflight

        run = self._runs[run_id]
        report = on_progress or (lambda message: None)
        session = self.session()
        name = run.manifest["metadata"]["name"]
        where = {"namespace": session.namespace, "rayjob": name}
        context = {"context": session.context} if session.context else {}
        self.update(run, cluster={**where, **context})
        try:
            preflight(session, run.manifest, report=report)
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
            session.close()

    def result(self, run_id: str) -> Any:
        """The return value; a detached run has none yet (see ``flyray runs show``)."""
        run = self._runs[run_id]
        if run.record.status is RunStatus.RUNNING and run.error is None:
            return None
        return super().result(run_id)

    def cancel(self, run_id: str) -> None:
        """Delete the run's RayJob if it has one (e.g. a detached run); else as any job run."""
        run = self._runs[run_id]
        if run.record.cluster.get("rayjob") and not run.record.status.is_terminal():
            run.record, _ = cancel_run(self.store, run.record)
        else:
            super().cancel(run_id)

    def _failed(self, run: JobRun, exc: BaseException) -> None:
        run.error = exc
        self.update(run, status=RunStatus.FAILED, message=str(exc), ended_at=utc_now())


class _Follower:
    """One run's RayJob from creation to deletion: progress, attempts, logs, outcome."""

    def __init__(
        self, executor: KubeRayExecutor, run: JobRun, session: KubeSession, report: Any
    ) -> None:
        from flyray.executors.kube.logs import SubmitterLogs

        self.executor, self.run_, self.session, self.report = executor, run, session, report
        self.name = run.manifest["metadata"]["name"]
        self.ref = session.rayjob_ref(self.name)
        self.logs = SubmitterLogs(session, self.name, executor.on_log)
        self.readiness = ClusterReadiness(session, report)
        self.started = time.monotonic()

    def run(self) -> RunStatus:
        executor, run = self.executor, self.run_
        try:
            self.session.create_rayjob(run.manifest)
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

    def _follow(self) -> Snapshot:
        """Follow the RayJob until the operator is done with it; its last state."""
        previous: Snapshot | None = None
        with contextlib.closing(iter(ObjectWatch(self.session, self.name))) as events:
            for kind, rayjob in events:
                if kind == "DELETED":
                    raise SubmissionError(
                        f"{self.ref} was deleted by someone else while run "
                        f"{self.run_.record.run_id} was going on; the run is lost"
                    )
                current = Snapshot.of(rayjob)
                for line in progress(previous, current, elapsed=time.monotonic() - self.started):
                    self.report(line)
                self._track(current)
                if current.deployment == "Initializing" and current.cluster:
                    self.readiness.follow(current.cluster)
                else:
                    self.readiness.stop()
                if current.deployment not in ("", "Initializing"):
                    self.logs.start()  # the submitter pod comes with Running
                self.logs.nudge()
                previous = current
                if current.is_terminal():
                    return current
        raise AssertionError("unreachable: the watch only ends with DELETED")  # pragma: no cover

    def _track(self, snapshot: Snapshot) -> None:
        """Keep the record's attempts and cluster in step with the RayJob."""
        record = self.run_.record
        changed = track_attempts(record, snapshot)
        for key, value in (("raycluster", snapshot.cluster), ("dashboard_url", snapshot.dashboard)):
            if value and record.cluster.get(key) != value:
                record.cluster[key], changed = value, True
        if changed:
            self.executor.update(self.run_)

    def _finish(self, final: Snapshot) -> RunStatus:
        """The RayJob has ended: keep its log, read the outcome, delete it."""
        run, store = self.run_, self.executor.store
        run_id = run.record.run_id
        self._clean_up(wait=DELETE_WAIT_S)
        status = final.run_status()
        if status is RunStatus.SUCCEEDED:
            run.error = None
            self.executor.update(run, status=status, message=None, ended_at=utc_now())
            return status
        run.error = failure_error(
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

    def _clean_up(self, *, wait: float, interrupted: bool = False) -> None:
        """Store the log, then delete the RayJob and wait (bounded) until it is gone."""
        self.readiness.stop()
        if interrupted:
            self.logs.stop()
        else:
            self.logs.finish(grace=LOG_GRACE_S)
        with contextlib.suppress(Exception):
            text = self.logs.collect()
            if text:
                self.executor.store.write_log(self.run_.record.run_id, text)
        try:
            if not self.session.delete_rayjob(self.name):
                return
            gone = wait_deleted(self.session, self.name, timeout=wait)
        except SubmissionError as exc:
            self.report(
                f"could not delete {self.ref} ({exc}); delete it with `kubectl delete rayjob "
                f"-n {self.session.namespace} {self.name}`"
            )
            return
        state = "deleted" if gone else f"deleting (still there after {wait:.0f} s)"
        self.report(
            f"{self.ref} {state}: the operator stops its Ray job and deletes its cluster"
            + (" (interrupted)" if interrupted else "")
        )

    def _detached(self) -> RunStatus:
        run_id = self.run_.record.run_id
        self.report(
            f"detached: {self.ref} runs on; `flyray logs {run_id}` shows its log and "
            f"`flyray cancel {run_id}` deletes it"
        )
        return RunStatus.RUNNING


def track_attempts(record: RunRecord, snapshot: Snapshot) -> bool:
    """Bring ``record.attempts`` in line with the RayJob's state; True if anything changed."""
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
    if snapshot.deployment in ENDED:
        attempt.ended_at = attempt.ended_at or utc_now()
        if attempt.status is RunStatus.FAILED:
            attempt.message = snapshot.outcome()
            attempt.error_kind = "user" if snapshot.reason == "AppFailed" else "infrastructure"
    return [attempt.to_dict() for attempt in record.attempts] != before


def refresh_run(store: RunStore, record: RunRecord) -> RunRecord:
    """Bring a kuberay run's record up to date from its RayJob (status, attempts, log)."""
    if record.status.is_terminal() or not record.cluster.get("rayjob"):
        return record
    with _session(record) as session:
        rayjob = session.get_rayjob(record.cluster["rayjob"])
        if rayjob is None:
            record.status = RunStatus.STOPPED
            record.message = f"{session.rayjob_ref(record.cluster['rayjob'])} is gone"
            record.ended_at = utc_now()
        else:
            _refresh_from(store, record, session, Snapshot.of(rayjob))
    store.save_record(record)
    return record


def cancel_run(store: RunStore, record: RunRecord) -> tuple[RunRecord, bool]:
    """Delete a kuberay run's RayJob (its log stored first); (record, whether it was deleted).

    A run that was still going is recorded as STOPPED.
    """
    record = refresh_run(store, record)
    name = record.cluster.get("rayjob")
    if not name:
        return record, False
    with _session(record) as session:
        _store_log(store, record, session)
        deleted = session.delete_rayjob(name)
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
    store: RunStore, record: RunRecord, session: KubeSession, snapshot: Snapshot
) -> None:
    track_attempts(record, snapshot)
    for key, value in (("raycluster", snapshot.cluster), ("dashboard_url", snapshot.dashboard)):
        if value:
            record.cluster[key] = value
    _store_log(store, record, session)
    record.status = snapshot.run_status()
    if record.status is RunStatus.PENDING:
        record.status = RunStatus.RUNNING  # created, so under way
    if snapshot.is_terminal():
        record.ended_at = record.ended_at or utc_now()
        if record.status is RunStatus.FAILED:
            manifest = _stored_manifest(store, record.run_id)
            error = failure_error(
                snapshot,
                run_id=record.run_id,
                task_name=record.task,
                spec=manifest.get("spec", {}),
                error=store.read_error(record.run_id),
            )
            record.message = str(error)


def _store_log(store: RunStore, record: RunRecord, session: KubeSession) -> None:
    from flyray.executors.kube.logs import SubmitterLogs

    text = SubmitterLogs(session, record.cluster["rayjob"], None).collect()
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


def list_rayjobs(settings: Settings) -> list[dict[str, str]]:
    """flyray's RayJobs in the settings' namespace, found by label, newest first.

    They include runs this machine's run store does not know (started elsewhere, or whose
    caller died): each row says the RayJob's name, run id, task and statuses.
    """
    with KubeSession(context=settings.context, namespace=settings.namespace) as session:
        items = session.list_objects(label_selector=MANAGED_BY_SELECTOR).get("items", [])
    rows = []
    for item in items:
        metadata, status = item.get("metadata", {}), item.get("status") or {}
        rows.append(
            {
                "name": metadata.get("name", ""),
                "run_id": (metadata.get("labels") or {}).get("flyray.io/run-id", ""),
                "task": (metadata.get("annotations") or {}).get("flyray.io/task-name", ""),
                "deployment": status.get("jobDeploymentStatus") or "",
                "job": status.get("jobStatus") or "",
                "created": metadata.get("creationTimestamp", ""),
            }
        )
    return sorted(rows, key=lambda row: row["created"], reverse=True)
