"""``local-cluster`` mode: the RayJob manifest, run with real Ray processes on this machine.

Like KubeRay on one box: start the head and every worker replica the manifest declares,
submit the manifest's entrypoint and runtime env through the Ray Jobs API, follow the job
(status, live logs, deadline, retries), store everything in the run record, tear it all down.
A warm cluster (``flyray cluster up``, ``executors.warm``) whose cluster part matches the
manifest's runs the job instead, and stays up; ``fresh=True`` never uses one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from flyray.config.settings import Settings
from flyray.errors import ClusterLostError, FlyrayError, SubmissionError
from flyray.executors.base import LogCallback, ProgressCallback
from flyray.executors.jobs.client import JobsClientFactory
from flyray.executors.jobs.executor import JobExecutor
from flyray.executors.jobs.run import JobRun, no_interrupts
from flyray.manifest.rayjob import refuse_existing_cluster
from flyray.plugins.ray.request import ray_request
from flyray.store.record import RunRecord, RunStatus, utc_now
from flyray.task.base import FunctionTask

if TYPE_CHECKING:
    from flyray.executors.localcluster.cluster import LocalRayCluster
    from flyray.executors.localcluster.warm.registry import Registry, WarmCluster

__all__ = ["LocalClusterExecutor"]

LOST_NODE_WAIT_S = 5.0  # how long a node has to be seen dead once the Jobs API stops answering


class LocalClusterExecutor(JobExecutor):
    """Runs a Ray task as a job on a warm cluster that matches, else on a transient one."""

    mode = "local-cluster"
    options = frozenset({"fresh"})

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        on_log: LogCallback | None = None,
        jobs_client: JobsClientFactory | None = None,
        fresh: bool = False,
    ) -> None:
        super().__init__(settings, on_log=on_log, jobs_client=jobs_client)
        self.fresh = fresh

    def check(self, task: FunctionTask) -> None:
        """A task that names an existing cluster has nothing for this mode to start."""
        refuse_existing_cluster(ray_request(task))

    def wait(self, run_id: str, *, on_progress: ProgressCallback | None = None) -> RunStatus:
        """Run the job (retries, deadline) on a matching warm cluster, else on a new cluster."""
        from flyray.executors.localcluster.warm.clusters import acquire, clean_up, release
        from flyray.executors.localcluster.warm.registry import Registry

        run = self._runs[run_id]
        report = on_progress or (lambda message: None)
        registry = Registry(self.settings.clusters_dir_path())
        if self.fresh:
            clean_up(registry, report)  # what a dead keeper left is stopped by any run
            lease = None
        else:
            lease = acquire(registry, run.manifest, preferred=run.task.env.dns_name, report=report)
            if lease is None and run.task.reuses_cluster:
                lease = self._start_reused(registry, run, report)
        if lease is None:
            return self._run_transient(run, report)
        try:
            return self._run_warm(run, lease.cluster, report)
        finally:
            release(registry, lease)

    def _start_reused(self, registry: Registry, run: JobRun, report: ProgressCallback) -> Any:
        """A task with a reuse policy starts its cluster warm, kept for the policy's idle_ttl.

        The warm cluster is this run's own cluster, so this and later runs like it match it.
        When it cannot be started (the name holds another cluster, or is starting), the run
        goes on a transient cluster and says why.
        """
        import inspect

        from flyray.executors.localcluster.warm.clusters import acquire, up

        policy = run.task.env.reusable
        idle = policy.idle_ttl.total_seconds() if policy else self.settings.cluster_idle_timeout
        try:
            entry, _ = up(
                run.task,
                settings=self.settings,
                source=f"{inspect.getfile(run.task.func)} {run.task.name} (reusable)",
                idle_timeout=idle,
                report=report,
                manifest=run.manifest,
            )
        except FlyrayError as exc:
            report(f"not kept warm for reuse ({exc}); running on a transient cluster")
            return None
        report(f"kept warm for reuse: stops after {idle:g} s unused (ReusePolicy.idle_ttl)")
        return acquire(registry, run.manifest, preferred=entry.name, report=report)

    def _run_warm(self, run: JobRun, warm: WarmCluster, report: ProgressCallback) -> RunStatus:
        """Follow the job on a warm cluster (its standby driver runs it), which stays up."""
        from flyray.executors.localcluster.autoscale.watch import watch_autoscaling
        from flyray.executors.localcluster.warm.standby import standby_jobs

        cluster = {"dashboard_url": warm.dashboard_url, "gcs_address": warm.gcs_address}
        cluster.update(temp_dir=warm.temp_dir, warm_cluster=warm.name, owner=_this_process())
        self.update(run, status=RunStatus.RUNNING, started_at=utc_now(), cluster=cluster)
        report(
            f"on warm cluster {warm.name!r} ({warm.nodes} nodes): dashboard {warm.dashboard_url}"
        )
        status = RunStatus.FAILED
        try:
            with self._recorded(run):
                client = self.jobs_client(warm.dashboard_url, warm.auth_headers())
                with (
                    standby_jobs(client, warm.temp_dir, report) as jobs,
                    watch_autoscaling(warm.temp_dir, report),
                ):
                    status = self.follow(run, jobs, report)
        finally:
            self.update(run, ended_at=utc_now())
        return status

    def _run_transient(self, run: JobRun, report: ProgressCallback) -> RunStatus:
        """Start the cluster, run the job (with retries and deadline), tear the cluster down."""
        from flyray.executors.localcluster.autoscale.watch import watch_autoscaling
        from flyray.executors.localcluster.from_manifest import new_cluster

        cluster = new_cluster(run.manifest, report)
        self.update(
            run, status=RunStatus.RUNNING, started_at=utc_now(), cluster={"owner": _this_process()}
        )
        status, keep = RunStatus.FAILED, 0.0
        try:
            with self._recorded(run):
                report(f"starting {1 + len(cluster.workers)} Ray nodes")
                cluster.start()
                run.record.cluster.update(
                    dashboard_url=cluster.dashboard_url,
                    gcs_address=cluster.gcs_address,
                    temp_dir=str(cluster.temp_dir),
                    nodes=" ".join(f"{pid}:{start}" for pid, start in cluster.leaders().items()),
                )
                self.update(run)
                report(f"cluster ready: dashboard {cluster.dashboard_url}")
                client = self.jobs_client(cluster.dashboard_url, cluster.auth_headers())
                with watch_autoscaling(cluster.temp_dir, report):
                    status = self._follow_on(cluster, run, client, report)
                keep = _ttl(run.manifest)
        finally:
            self._end(run, cluster, keep, report)
        return status

    def refresh_record(self, record: RunRecord) -> RunRecord:
        """A run whose flyray process died (``kill -9``) before it ended is recorded FAILED.

        Its cluster went with that process: the cluster's guard stopped it (a warm cluster
        stays up). Only the process that runs a local-cluster run can end it otherwise.
        """
        from flyray.executors.localcluster.procs import is_running

        owner = record.cluster.get("owner", "")
        pid, _, start = owner.partition(":")
        if record.status.is_terminal() or not owner or is_running(int(pid), int(start)):
            return record
        record.status, record.ended_at = RunStatus.FAILED, utc_now()
        record.message = (
            f"the flyray process that ran it (pid {pid}) died before the run ended "
            "(killed?); a transient cluster was stopped with it; run the task again"
        )
        record.updated_at = record.ended_at
        self.store.save_record(record)
        return record

    def _follow_on(
        self, cluster: LocalRayCluster, run: JobRun, client: Any, report: ProgressCallback
    ) -> RunStatus:
        """Follow the job; when its Jobs API stops answering because a node died, say which."""
        try:
            return self.follow(run, client, report)
        except SubmissionError as exc:
            lost = _lost_nodes(cluster)
            if not lost:
                raise
            error = ClusterLostError(_lost_message(run.record.run_id, cluster, lost))
            run.error = error
            self.update(run, status=RunStatus.FAILED, message=str(error))
            raise error from exc

    @contextlib.contextmanager
    def _recorded(self, run: JobRun) -> Iterator[None]:
        """Record how a run broke off: Ctrl-C as STOPPED (re-raised), any other error as FAILED."""
        try:
            yield
        except KeyboardInterrupt as exc:
            if not run.record.status.is_terminal():  # interrupted before the job started
                run.error = exc
                self.update(run, status=RunStatus.STOPPED, message="interrupted (Ctrl-C)")
            raise
        except Exception as exc:
            run.error = exc
            self.update(run, status=RunStatus.FAILED, message=str(exc))

    def _end(self, run: JobRun, cluster: Any, keep: float, report: ProgressCallback) -> None:
        """Tear the cluster down now, or hand it to a reaper that does so after its TTL.

        A kept cluster is listed by ``flyray cluster list`` under the run's id until then.
        """
        from flyray.config.names import dns1123_name
        from flyray.executors.localcluster.warm.clusters import keep_for_ttl
        from flyray.executors.localcluster.warm.registry import Registry

        if keep > 0:
            name = dns1123_name(run.record.run_id)
            registry = Registry(self.settings.clusters_dir_path())
            source = f"run {run.record.run_id} ({run.record.task})"
            pid = keep_for_ttl(registry, cluster, run.manifest, name=name, source=source, ttl=keep)
            until = datetime.fromtimestamp(time.time() + keep, timezone.utc).isoformat()
            run.record.cluster.update(kept_until=until, reaper_pid=str(pid), kept_as=name)
            report(
                f"keeping the cluster for {keep:g} s (ttl_seconds_after_finished) as {name!r}: "
                f"dashboard {cluster.dashboard_url}; `flyray cluster down {name}` (or "
                f"`kill {pid}`) tears it down now"
            )
        else:
            report("tearing down the cluster")
            with no_interrupts():
                cluster.stop(timeout=5.0)  # a transient cluster: no need to drain it gently
        self.update(run, ended_at=utc_now())


def _ttl(manifest: Mapping[str, Any]) -> float:
    """How long KubeRay would keep the cluster after the job: the TTL, with shutdown on."""
    spec = manifest["spec"]
    return (
        float(spec.get("ttlSecondsAfterFinished", 0)) if spec["shutdownAfterJobFinishes"] else 0.0
    )


def _this_process() -> str:
    """This process as "pid:start" (/proc clock ticks): a run's owner, recorded for later."""
    from flyray.executors.localcluster.procs import start_time

    return f"{os.getpid()}:{start_time(os.getpid()) or 0}"


def _lost_nodes(cluster: LocalRayCluster) -> dict[str, int]:
    """{name: exit code} of the nodes that died; a dying node gets ``LOST_NODE_WAIT_S`` to show.

    `ray start --block` exits once one of its node's processes has died (the GCS, a raylet),
    which may be a moment after the Jobs API stopped answering.
    """
    deadline = time.monotonic() + LOST_NODE_WAIT_S
    while not (lost := cluster.exited_nodes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return lost


def _lost_message(run_id: str, cluster: LocalRayCluster, lost: Mapping[str, int]) -> str:
    """What a run whose cluster lost nodes says: which ones, how they ended, what it means."""
    how = ", ".join(f"{name!r} ({_exit(code)})" for name, code in lost.items())
    what = (
        "its head node died, and with it the job's driver and the Jobs API"
        if cluster.head.name in lost
        else "the Jobs API stopped answering"
    )
    return (
        f"run {run_id} failed: its local Ray cluster lost {how} while the job ran: {what}; "
        "the cluster was torn down, run the task again"
    )


def _exit(code: int) -> str:
    """How a `ray start` ended, as a person reads it: "killed by SIGKILL", "exit code 1"."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
