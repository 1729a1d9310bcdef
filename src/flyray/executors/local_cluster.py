"""``local-cluster`` mode: the RayJob manifest, run with real Ray processes on this machine.

Like KubeRay on one box: start the head and every worker replica the manifest declares,
submit the manifest's entrypoint and runtime env through the Ray Jobs API, follow the job
(status, live logs, deadline, retries), store everything in the run record, tear it all down.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flyray.executors.base import ProgressCallback, RunStatus
from flyray.executors.jobs import JobExecutor, JobRun, no_interrupts
from flyray.manifest.rayjob import refuse_existing_cluster
from flyray.store.record import utc_now
from flyray.task.base import FunctionTask

__all__ = ["LocalClusterExecutor"]


class LocalClusterExecutor(JobExecutor):
    """Runs a Ray task as a job on a transient multi-node Ray cluster started here."""

    mode = "local-cluster"

    def check(self, task: FunctionTask) -> None:
        """A task that names an existing cluster has nothing for this mode to start."""
        refuse_existing_cluster(task)

    def wait(self, run_id: str, *, on_progress: ProgressCallback | None = None) -> RunStatus:
        """Start the cluster, run the job (with retries and deadline), tear the cluster down."""
        from ray.job_submission import JobSubmissionClient

        from flyray.executors.nodes import LocalRayCluster
        from flyray.executors.topology import cluster_nodes

        run = self._runs[run_id]
        report = on_progress or (lambda message: None)
        head, workers = cluster_nodes(run.manifest)
        total = 1 + len(workers)
        cluster = LocalRayCluster(
            head,
            workers,
            env={"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
            on_progress=lambda up, _: report(f"nodes up {up}/{total}"),
        )
        self.update(run, status=RunStatus.RUNNING, started_at=utc_now())
        keep = 0.0
        try:
            report(f"starting {total} Ray nodes")
            cluster.start()
            self.update(
                run,
                cluster={
                    "dashboard_url": cluster.dashboard_url,
                    "gcs_address": cluster.gcs_address,
                    "temp_dir": str(cluster.temp_dir),
                },
            )
            report(f"cluster ready: dashboard {cluster.dashboard_url}")
            client = JobSubmissionClient(cluster.dashboard_url, headers=cluster.auth_headers())
            status = self.follow(run, client, report)
            keep = _ttl(run.manifest)
        except KeyboardInterrupt as exc:
            if not run.record.status.is_terminal():  # interrupted before the job started
                run.error = exc
                self.update(run, status=RunStatus.STOPPED, message="interrupted (Ctrl-C)")
            raise
        except Exception as exc:
            run.error = exc
            self.update(run, status=RunStatus.FAILED, message=str(exc))
            return RunStatus.FAILED
        finally:
            self._end(run, cluster, keep, report)
        return status

    def _end(self, run: JobRun, cluster: Any, keep: float, report: ProgressCallback) -> None:
        """Tear the cluster down now, or hand it to a reaper that does so after its TTL."""
        from flyray.executors.reaper import start_reaper

        if keep > 0:
            temp_dir = cluster.temp_dir
            pid = start_reaper(after=keep, leaders=cluster.detach(), temp_dir=temp_dir)
            until = datetime.fromtimestamp(time.time() + keep, timezone.utc).isoformat()
            run.record.cluster.update(kept_until=until, reaper_pid=str(pid))
            report(
                f"keeping the cluster for {keep:g} s (ttl_seconds_after_finished): dashboard "
                f"{cluster.dashboard_url}; `kill {pid}` tears it down now"
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
