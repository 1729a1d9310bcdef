"""One kuberay run's object from creation to deletion: progress, attempts, logs, outcome.

Once the object has ended, or on Ctrl-C or any error, it is deleted (foreground: the operator
stops the Ray job and deletes its cluster); a RayJob that keeps its cluster for a TTL after
the job is left to KubeRay. ``detach`` leaves it running. While it goes on, the pods of its
RayCluster are watched (``pods``): a container that cannot run fails the run at once, with
the end of its log, which is kept with the run's log.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from flyray.errors import FlyrayError, SubmissionError
from flyray.executors.jobs.run import JobRun, RunKeeper, no_interrupts
from flyray.executors.kuberay.models import model_of, track_attempts
from flyray.executors.kuberay.pods import ClusterPods, PodFailure, pod_error
from flyray.executors.kuberay.session import RAYJOBS, KubeSession
from flyray.executors.kuberay.watch import ClusterReadiness, ObjectWatch, wait_deleted
from flyray.plugins.ray.envsetup import building
from flyray.store.record import RunStatus, utc_now

__all__ = ["DELETE_WAIT_S", "Follower", "kept_for"]

LOG_GRACE_S = 15.0  # how long the submitter pod may take to finish its log after the job ends
DELETE_WAIT_S = 60.0  # how long to wait for a deleted RayJob (and its cluster) to be gone
INTERRUPTED_DELETE_WAIT_S = 15.0  # the same after Ctrl-C or an error: the user is waiting


class Follower:
    """One run's RayJob (or Job) from creation to deletion: progress, attempts, logs, outcome."""

    def __init__(
        self,
        executor: RunKeeper,
        run: JobRun,
        session: KubeSession,
        report: Any,
        *,
        detach: bool = False,
    ) -> None:
        from flyray.executors.kuberay.logs import SubmitterLogs

        report = _NoRepeats(report)  # readiness comes from the RayJob and its RayCluster
        self.detach = detach
        self.executor, self.run_, self.session, self.report = executor, run, session, report
        self.model = model_of(run.manifest)
        self.name = run.manifest["metadata"]["name"]
        self.ref = session.ref(self.model.kind, self.name)
        self.logs = SubmitterLogs(session, self.name, executor.on_log, on_waiting=report)
        self.readiness = ClusterReadiness(session, report)
        self.pods = ClusterPods(session, self._pod_failed)
        self.pod_failure: FlyrayError | None = None  # a container of the cluster cannot run
        self.pod_log = ""  # a section of the run's log: the end of that container's log
        self._watch: ObjectWatch | None = None
        self.started = time.monotonic()
        self.installs = building(_runtime_env(run.manifest))

    def run(self) -> RunStatus:
        executor, run = self.executor, self.run_
        try:
            self.session.create(self.model.kind, run.manifest)
            executor.update(run, status=RunStatus.RUNNING, started_at=utc_now())
            self.report(f"created {self.ref}")
            if self.detach:
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
                run.error = exc
                executor.update(run, status=RunStatus.FAILED, message=str(exc), ended_at=utc_now())
            raise

    def _follow(self) -> Any:
        """Follow the object until it has ended; its last state (a snapshot)."""
        previous = None
        watch = self._watch = ObjectWatch(self.session, self.name, kind=self.model.kind)
        if self.pod_failure is not None:  # found before this watch could be stopped
            watch.stop()
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
                self._say_building(previous, current, elapsed)
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
                if current.cluster:
                    self.pods.follow(current.cluster)
        if self.pod_failure is not None:  # the watch was stopped for it
            raise self.pod_failure
        raise AssertionError("unreachable: the watch only ends with DELETED")  # pragma: no cover

    def _say_building(self, previous: Any, current: Any, elapsed: float) -> None:
        """A job that turns PENDING with pip/uv/conda in its runtime env waits for Ray to
        build that env on the cluster: say so (its RUNNING line then shows how long it took)."""
        pending = getattr(current, "job_status", "") == "PENDING"
        if self.installs and pending and getattr(previous, "job_status", "") != "PENDING":
            job = f"Ray job {current.job_id}" if current.job_id else "Ray job"
            self.report(
                f"{job} PENDING: Ray is building its runtime env ({self.installs}) "
                f"on the cluster ({elapsed:.0f} s)"
            )

    def _pod_failed(self, failure: PodFailure, log: str | None) -> None:
        """A container of the cluster cannot run (from the pods' thread): end the following."""
        run_id = self.run_.record.run_id
        if log:
            self.pod_log = (
                f"--- pod {failure.pod}, container {failure.container}: the end of its log ---\n"
                f"{log.rstrip(chr(10))}\n"
            )
        self.pod_failure = pod_error(
            failure,
            log,
            run_id=run_id,
            task_name=self.run_.task.name,
            logs=self.executor.store.uri("runs", run_id, "logs", "job.log"),
        )
        if self._watch is not None:
            self._watch.stop()

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
        """Read the pods' logs to their end (not after Ctrl-C) and store them with the run,
        and the end of a failed container's log."""
        self.readiness.stop()
        self.pods.stop()
        if interrupted or self.pod_failure is not None:
            self.logs.stop()
        else:
            self.logs.finish(grace=LOG_GRACE_S)
        with contextlib.suppress(Exception):
            text = self.logs.collect() + self.pod_log
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


def _runtime_env(manifest: dict[str, Any]) -> dict[str, Any]:
    """A RayJob's runtime env (``runtimeEnvYAML``); ``{}`` for a batch Job or none."""
    import yaml

    return yaml.safe_load(manifest.get("spec", {}).get("runtimeEnvYAML") or "{}") or {}
