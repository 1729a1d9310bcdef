"""``local-cluster`` mode: the RayJob manifest, run with real Ray processes on this machine.

Like KubeRay on one box: start the head and every worker replica the manifest declares,
submit the manifest's entrypoint and runtime env through the Ray Jobs API, follow the job
(status, live logs, deadline, retries), store everything in the run record, tear it all down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flyray.config.settings import Settings
from flyray.errors import ManifestError, TaskError, TaskTimeoutError
from flyray.executors.base import Executor, LogCallback, ProgressCallback, RunStatus
from flyray.store.record import Attempt, RunRecord, utc_now
from flyray.store.runstore import RunStore
from flyray.task.base import FunctionTask

__all__ = ["LocalClusterExecutor"]

POLL_SECONDS = 0.5  # how often the job's status and new log lines are fetched


@dataclass
class _Run:
    task: FunctionTask
    manifest: dict[str, Any]
    record: RunRecord
    error: BaseException | None = None


class LocalClusterExecutor(Executor):
    """Runs a Ray task as a job on a transient multi-node Ray cluster started here."""

    mode = "local-cluster"

    def __init__(self, settings: Settings | None = None, *, on_log: LogCallback | None = None):
        self.settings = settings or Settings.load()
        self.store = RunStore(self.settings.run_store_path())
        self.on_log = on_log or sys.stderr.write
        self._runs: dict[str, _Run] = {}

    def submit(
        self, task: FunctionTask, args: tuple[Any, ...], kwargs: Mapping[str, Any], *, run_id: str
    ) -> None:
        """Bundle the code, render the manifest, store inputs, manifest and a PENDING record."""
        from flyray.executors.render import render_for_run
        from flyray.manifest.rayjob import dump_yaml

        _refuse_existing_cluster(task)
        manifest = render_for_run(task, run_id=run_id, store=self.store, settings=self.settings)
        record = RunRecord(
            run_id=run_id,
            task=task.name,
            mode=self.mode,
            manifest_name=manifest["metadata"]["name"],
        )
        self.store.write_inputs(run_id, tuple(args), dict(kwargs))
        self.store.write_manifest(run_id, dump_yaml(manifest))
        self.store.save_record(record)
        self._runs[run_id] = _Run(task, manifest, record)

    def wait(self, run_id: str, *, on_progress: ProgressCallback | None = None) -> RunStatus:
        """Start the cluster, run the job (with retries and deadline), tear the cluster down."""
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
        self._update(run, status=RunStatus.RUNNING, started_at=utc_now())
        keep = 0.0
        try:
            report(f"starting {total} Ray nodes")
            cluster.start()
            self._update(
                run,
                cluster={
                    "dashboard_url": cluster.dashboard_url,
                    "gcs_address": cluster.gcs_address,
                    "temp_dir": str(cluster.temp_dir),
                },
            )
            report(f"cluster ready: dashboard {cluster.dashboard_url}")
            status = _JobFollower(self, run, cluster, report).run()
            keep = _ttl(run.manifest)
        except KeyboardInterrupt as exc:
            run.error = exc
            self._update(run, status=RunStatus.STOPPED, message="interrupted (Ctrl-C)")
            raise
        except BaseException as exc:
            run.error = exc
            self._update(run, status=RunStatus.FAILED, message=str(exc))
            return RunStatus.FAILED
        finally:
            self._end(run, cluster, keep, report)
        return status

    def _end(self, run: _Run, cluster: Any, keep: float, report: ProgressCallback) -> None:
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
            with _no_interrupts():
                cluster.stop(timeout=5.0)  # a transient cluster: no need to drain it gently
        self._update(run, ended_at=utc_now())

    def result(self, run_id: str) -> Any:
        """The task's return value read from the run store, or the run's error raised."""
        run = self._runs[run_id]
        if run.error is not None:
            raise run.error
        return self.store.read_outputs(run_id)

    def cancel(self, run_id: str) -> None:
        """Stop a run that has not started; a running one stops on Ctrl-C in this process."""
        run = self._runs[run_id]
        if not run.record.status.is_terminal():
            self._update(run, status=RunStatus.STOPPED, message="cancelled")

    def _update(self, run: _Run, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(run.record, key, value)
        run.record.updated_at = utc_now()
        self.store.save_record(run.record)


class _JobFollower:
    """Submits the manifest's job to a running local cluster and follows it to the end."""

    def __init__(self, executor: LocalClusterExecutor, run: _Run, cluster: Any, report: Any):
        from ray.job_submission import JobSubmissionClient

        self.executor, self.run_, self.cluster, self.report = executor, run, cluster, report
        self.client = JobSubmissionClient(cluster.dashboard_url, headers=cluster.auth_headers())
        spec = run.manifest["spec"]
        self.deadline = spec.get("activeDeadlineSeconds")
        self.attempts = spec.get("backoffLimit", 0) + 1

    def run(self) -> RunStatus:
        """Every attempt until one succeeds, the retries are used up or the deadline passes."""
        started = time.monotonic()
        for number in range(1, self.attempts + 1):
            status = self._attempt(number, started)
            if status is RunStatus.SUCCEEDED or isinstance(self.run_.error, TaskTimeoutError):
                break
            if number < self.attempts:
                self.report(f"attempt {number} failed; retrying ({number + 1}/{self.attempts})")
        self.executor._update(self.run_, status=status)
        return status

    def _attempt(self, number: int, started: float) -> RunStatus:
        import yaml

        run_id = self.run_.record.run_id
        spec = self.run_.manifest["spec"]
        submission_id = f"{run_id}-{number}"
        attempt = Attempt(number=number, submission_id=submission_id, started_at=utc_now())
        self.run_.record.attempts.append(attempt)
        self.executor._update(self.run_)
        self.client.submit_job(
            entrypoint=spec["entrypoint"],
            runtime_env=yaml.safe_load(spec.get("runtimeEnvYAML") or "{}"),
            submission_id=submission_id,
        )
        try:
            status = self._follow(submission_id, started)
        except KeyboardInterrupt:
            self.client.stop_job(submission_id)
            attempt.status, attempt.message = RunStatus.STOPPED, "interrupted (Ctrl-C)"
            raise
        finally:
            self.executor.store.write_log(run_id, self.client.get_job_logs(submission_id))
            attempt.ended_at = utc_now()
        attempt.status = status
        if status is not RunStatus.SUCCEEDED:
            self.run_.error = self.run_.error or self._job_error(submission_id)
            attempt.message = str(self.run_.error)
        else:
            self.run_.error = None
        self.executor._update(self.run_)
        return status

    def _follow(self, submission_id: str, started: float) -> RunStatus:
        from ray.job_submission import JobStatus

        shown, last_status = 0, None
        while True:
            status = self.client.get_job_status(submission_id)
            logs = self.client.get_job_logs(submission_id)
            if len(logs) > shown:
                self.executor.on_log(logs[shown:])
                shown = len(logs)
            if status != last_status:
                self.report(f"job {submission_id} {status.value}")
                last_status = status
            if status.is_terminal():
                return RunStatus.SUCCEEDED if status == JobStatus.SUCCEEDED else RunStatus.FAILED
            if self.deadline and time.monotonic() - started > self.deadline:
                self.client.stop_job(submission_id)
                self.run_.error = TaskTimeoutError(
                    f"run {self.run_.record.run_id} passed its deadline of {self.deadline} s "
                    f"(the task's timeout); Ray job {submission_id} was stopped",
                    run_id=self.run_.record.run_id,
                    logs=self.executor.store.uri(
                        "runs", self.run_.record.run_id, "logs", "job.log"
                    ),
                )
                return RunStatus.FAILED
            time.sleep(POLL_SECONDS)

    def _job_error(self, submission_id: str) -> TaskError:
        run_id = self.run_.record.run_id
        error = self.executor.store.read_error(run_id)
        logs = self.executor.store.uri("runs", run_id, "logs", "job.log")
        if error is not None:
            message = (
                f"task {self.run_.task.name} failed in run {run_id}: {error.type}: {error.message}"
            )
            return TaskError(message, run_id=run_id, remote_traceback=error.traceback, logs=logs)
        info = self.client.get_job_info(submission_id)
        message = (
            f"Ray job {submission_id} of run {run_id} ended {info.status.value}: {info.message}; "
            f"see `flyray logs {run_id}`"
        )
        return TaskError(message, run_id=run_id, logs=logs)


@contextlib.contextmanager
def _no_interrupts() -> Iterator[None]:
    """Hold off a second Ctrl-C while a teardown runs (main thread only), so it completes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _ttl(manifest: Mapping[str, Any]) -> float:
    """How long KubeRay would keep the cluster after the job: the TTL, with shutdown on."""
    spec = manifest["spec"]
    return (
        float(spec.get("ttlSecondsAfterFinished", 0)) if spec["shutdownAfterJobFinishes"] else 0.0
    )


def _refuse_existing_cluster(task: FunctionTask) -> None:
    config = task.plugin_config
    if getattr(config, "address", None) is not None:
        raise ManifestError(
            f"task {task.name} names an existing cluster (address={config.address!r}): "
            "local-cluster mode starts a cluster of its own, so there is nothing to start; "
            "run it in local mode to use that cluster"
        )
