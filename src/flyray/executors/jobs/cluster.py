"""``cluster`` mode: a Ray job on a running cluster's Jobs API, which flyray never starts or stops.

The same code bundle, entrypoint and run store as ``local-cluster``; the cluster is someone
else's, so the bundle and run store must be reachable from it (a shared path or an object
store URI). A detached run is followed up later from its record: ``status`` asks the
cluster, ``cancel`` stops the Ray job there.
"""

from __future__ import annotations

import os
import re
from typing import Any

from flyray.config.settings import Settings
from flyray.errors import ConfigError
from flyray.executors.base import LogCallback, ProgressCallback
from flyray.executors.jobs.client import JobsClientFactory, connect
from flyray.executors.jobs.executor import JobExecutor
from flyray.executors.jobs.run import LOSING, JobRun, mark_lost
from flyray.plugins.ray.config import RayJobConfig
from flyray.store.record import RunRecord, RunStatus, utc_now
from flyray.task.base import FunctionTask

__all__ = ["ClusterExecutor", "jobs_address"]

CANCELLED = "cancelled with `flyray cancel`"

_HTTP = re.compile(r"^https?://[^/\s]+:\d+/?$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d+$")


class ClusterExecutor(JobExecutor):
    """Submits a task as a Ray job to an existing cluster and follows it."""

    mode = "cluster"
    options = frozenset({"detach", "skip_version_check"})

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        on_log: LogCallback | None = None,
        jobs_client: JobsClientFactory | None = None,
        detach: bool = False,
        skip_version_check: bool = False,
    ) -> None:
        super().__init__(settings, on_log=on_log, jobs_client=jobs_client)
        self.detach = detach
        self.skip_version_check = skip_version_check

    def check(self, task: FunctionTask) -> None:
        """Resolve the Jobs API address now, so a missing one fails before anything is written."""
        jobs_address(self.settings, task)

    def wait(self, run_id: str, *, on_progress: ProgressCallback | None = None) -> RunStatus:
        """Connect (auth, versions), then follow the job; with ``detach``, only submit it."""
        run = self._runs[run_id]
        report = on_progress or (lambda message: None)
        address = jobs_address(self.settings, run.task)
        try:
            client = connect(
                address,
                factory=self.jobs_client,
                skip_version_check=self.skip_version_check,
                report=report,
            )
        except Exception as exc:
            run.error = exc
            self.update(run, status=RunStatus.FAILED, message=str(exc), ended_at=utc_now())
            raise
        self.update(run, cluster={"dashboard_url": address})
        if self.detach:
            return self._submit_only(run, client, report)
        status = self.follow(run, client, report)
        self.update(run, ended_at=utc_now())
        return status

    def refresh_record(self, record: RunRecord) -> RunRecord:
        """A detached run's record brought up to date from its cluster (status, log, end).

        A cluster that does not answer, or no longer knows the job, makes the run LOST (with
        the reason); a lost run whose cluster answers again gets the job's status. Other
        errors (a missing token, a server error) are raised and leave the record as it was.
        """
        attempt = record.attempts[-1] if record.attempts else None
        address = record.cluster.get("dashboard_url")
        if record.status.is_final() or attempt is None or not address:
            return record
        from ray.job_submission import JobStatus

        try:
            client = self._client(record)
            status = client.get_job_status(attempt.submission_id)
            log = client.get_job_logs(attempt.submission_id)
        except LOSING as exc:
            self.store.save_record(mark_lost(record, exc))
            return record
        self.store.write_log(record.run_id, log)
        record.status = attempt.status = RunStatus.RUNNING  # a lost run found again goes on
        record.message = attempt.message = None
        if status.is_terminal():
            final = {JobStatus.SUCCEEDED: RunStatus.SUCCEEDED, JobStatus.STOPPED: RunStatus.STOPPED}
            record.status = attempt.status = final.get(status, RunStatus.FAILED)
            record.ended_at = attempt.ended_at = utc_now()
            error = self.store.read_error(record.run_id)
            if error is not None and record.status is RunStatus.FAILED:
                record.message = attempt.message = f"{error.type}: {error.message}"
        record.updated_at = utc_now()
        self.store.save_record(record)
        return record

    def stop(self, run: JobRun) -> str:
        """Stop a detached run's Ray job on its cluster and record the run as STOPPED."""
        record = run.record
        attempt = record.attempts[-1]
        client = self._client(record)
        client.stop_job(attempt.submission_id)
        record.status = attempt.status = RunStatus.STOPPED
        record.message = attempt.message = CANCELLED
        record.ended_at = attempt.ended_at = utc_now()
        self.store.write_log(record.run_id, client.get_job_logs(attempt.submission_id))
        self.store.save_record(record)
        return f"run {record.run_id}: Ray job stopped; status {record.status.value}"

    def _client(self, record: RunRecord) -> Any:
        address = record.cluster["dashboard_url"]
        return connect(address, factory=self.jobs_client, skip_version_check=True)

    def _submit_only(self, run: JobRun, client: Any, report: ProgressCallback) -> RunStatus:
        import yaml

        from flyray.store.record import Attempt

        spec = run.manifest["spec"]
        submission_id = f"{run.record.run_id}-1"
        client.submit_job(
            entrypoint=spec["entrypoint"],
            runtime_env=yaml.safe_load(spec.get("runtimeEnvYAML") or "{}"),
            submission_id=submission_id,
        )
        attempt = Attempt(number=1, submission_id=submission_id, started_at=utc_now())
        attempt.status = RunStatus.RUNNING
        self.update(run, status=RunStatus.RUNNING, started_at=utc_now(), attempts=[attempt])
        report(f"submitted Ray job {submission_id}; detached")
        return RunStatus.RUNNING


def jobs_address(settings: Settings, task: FunctionTask | None = None) -> str:
    """The Jobs API URL: the address setting, else the task's config, else RAY_ADDRESS."""
    config = task.plugin_config if task is not None else None
    candidates = [
        ("address", settings.address),
        ("RayJobConfig.address", config.address if isinstance(config, RayJobConfig) else None),
        ("RAY_ADDRESS", os.environ.get("RAY_ADDRESS")),
    ]
    for source, value in candidates:
        if not value:
            continue
        if _HTTP.match(value):
            return value.rstrip("/")
        if _HOST_PORT.match(value) and source != "RayJobConfig.address":
            return f"http://{value}"
        if source == "address":
            raise ConfigError(
                "address",
                value,
                "must be the cluster's Jobs API, http(s)://host:port (the dashboard port, "
                "usually 8265); ray:// addresses are for the Ray Client (local mode)",
            )
    raise ConfigError(
        "address",
        None,
        "is needed in cluster mode: pass --address http://HOST:8265, set FLYRAY_ADDRESS or "
        "RAY_ADDRESS, or give RayJobConfig an http(s):// address",
    )
