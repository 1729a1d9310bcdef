"""``kuberay`` mode: the task's RayJob, created on Kubernetes and followed to its end.

Preflight first (run store, KubeRay CRD, RBAC, image, server-side dry run), then the RayJob
is created and followed with a watch; the submitter pod's log streams to ``on_log`` and is
stored with the run. The run's outputs or error come back through the run store. Once the
RayJob has ended, or on Ctrl-C or any error, flyray deletes it (foreground: the operator stops
the Ray job and deletes its cluster); ``detach`` leaves it running, and ``flyray cancel``
deletes it then. A RayJob whose spec keeps its cluster for a while after the job
(``shutdownAfterJobFinishes`` with ``ttlSecondsAfterFinished``, as the spec's example does) is
left to KubeRay, which deletes the cluster after the TTL; the RayJob object stays with its
status until ``flyray cancel``. Kubernetes errors become flyray errors in ``errors``.

A task whose config names an existing cluster (``address=``) has no cluster to create: it runs
as a plain batch Job (one pod, ``manifest.job``) that connects to that address, followed and
deleted the same way (``models`` holds what differs between the two kinds of object).
"""

from __future__ import annotations

import contextlib
from typing import Any

from flyray.config.settings import Settings
from flyray.errors import SubmissionError
from flyray.executors.base import LogCallback, ProgressCallback, RunOptions
from flyray.executors.jobs.executor import JobExecutor
from flyray.executors.jobs.run import JobRun
from flyray.executors.kuberay.follower import Follower
from flyray.executors.kuberay.models import model_of, run_object
from flyray.executors.kuberay.records import CANCELLED, cancel_run, refresh_run
from flyray.executors.kuberay.session import KubeSession
from flyray.executors.kuberay.warm import collect_idle, ensure_cluster, touch
from flyray.store.record import RunRecord, RunStatus, utc_now
from flyray.task.base import FunctionTask

__all__ = ["KubeRayExecutor"]


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
        where = {"namespace": session.namespace, model_of(run.manifest).record_key: name}
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
            return Follower(self, run, session, report, detach=self.detach).run()
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

    def refresh_record(self, record: RunRecord) -> RunRecord:
        """A going run's record brought up to date from its RayJob or Job (status, log)."""
        return refresh_run(self.store, record)

    def cancel(self, run_id: str) -> str:
        """Delete the run's RayJob or Job (its log kept first), going or kept after its end."""
        run = self.job_run(run_id)
        found = run_object(run.record)
        if found is None:
            if run.task is not None:  # this process's run, before anything was created
                return super().cancel(run_id)
            return f"run {run_id} ({run.record.status.value}) created nothing on Kubernetes"
        model, name = found
        ref = f"{model.kind.kind} {run.record.cluster.get('namespace')}/{name}"
        was = run.record.status
        run.record, deleted = cancel_run(self.store, run.record)
        status = run.record.status.value
        if not deleted:
            return f"run {run_id} ({status}): {ref} was already gone"
        if was.is_terminal() or run.record.message != CANCELLED:
            return f"run {run_id} had already ended ({status}); {ref} deleted"
        return f"run {run_id}: {ref} deleted; status {status}"

    def cleanup(self) -> None:
        """Close the Kubernetes session (a later call opens a new one)."""
        if self._session is not None:
            self._session.close()

    def _failed(self, run: JobRun, exc: BaseException) -> None:
        run.error = exc
        self.update(run, status=RunStatus.FAILED, message=str(exc), ended_at=utc_now())
