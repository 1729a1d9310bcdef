"""``cluster`` mode: a Ray job on a running cluster's Jobs API, which flyray never starts or stops.

The same code bundle, entrypoint and run store as ``local-cluster``; the cluster is someone
else's, so the bundle and run store must be reachable from it (a shared path or an object
store URI). Ray errors are translated here, at the boundary, into flyray errors.
"""

from __future__ import annotations

import json
import os
import platform
import re
import urllib.error
import urllib.request
from typing import Any

from flyray.config.settings import Settings
from flyray.errors import ConfigError, SubmissionError
from flyray.executors.base import LogCallback, ProgressCallback
from flyray.executors.jobs.auth import ray_auth_headers
from flyray.executors.jobs.executor import JobExecutor, refreshed_status
from flyray.executors.jobs.versions import check_versions
from flyray.store.record import RunRecord, RunStatus, utc_now
from flyray.store.runstore import RunStore
from flyray.task.base import FunctionTask

__all__ = ["ClusterExecutor", "cancel_run", "connect", "jobs_address", "refresh_run"]

_HTTP = re.compile(r"^https?://[^/\s]+:\d+/?$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d+$")
VERSION_TIMEOUT_S = 10.0  # how long a cluster's /api/version may take to answer


class ClusterExecutor(JobExecutor):
    """Submits a task as a Ray job to an existing cluster and follows it."""

    mode = "cluster"
    options = frozenset({"detach", "skip_version_check"})

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        on_log: LogCallback | None = None,
        detach: bool = False,
        skip_version_check: bool = False,
    ) -> None:
        super().__init__(settings, on_log=on_log)
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
            client = connect(address, skip_version_check=self.skip_version_check, report=report)
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

    def result(self, run_id: str) -> Any:
        """The return value; a detached run has none yet (see ``flyray runs show``)."""
        run = self._runs[run_id]
        if run.record.status is RunStatus.RUNNING and run.error is None:
            return None
        return super().result(run_id)

    def refresh(self, run_id: str) -> RunStatus:
        """A detached run's status from the cluster; once failed, its error is kept."""
        run = self._runs[run_id]
        run.record = refresh_run(self.store, self.store.load_record(run_id))  # e.g. cancelled
        return refreshed_status(self.store, run)

    def _submit_only(self, run: Any, client: Any, report: ProgressCallback) -> RunStatus:
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
    candidates = [
        ("address", settings.address),
        ("RayJobConfig.address", getattr(getattr(task, "plugin_config", None), "address", None)),
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


def connect(
    address: str, *, skip_version_check: bool = False, report: ProgressCallback | None = None
) -> Any:
    """A JobSubmissionClient for ``address``, with Ray's errors turned into flyray's."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    headers = ray_auth_headers()
    try:
        client = JobSubmissionClient(address, headers=headers)
    except AuthenticationError as exc:
        state = "was refused" if headers else "is missing"
        raise SubmissionError(
            f"the Ray cluster at {address} needs token authentication and the token {state}: "
            "set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH (or RAY_AUTH_MODE=token with "
            f"~/.ray/auth_token) to the cluster's token ({_first_line(exc)})"
        ) from exc
    except ConnectionError as exc:
        raise SubmissionError(
            f"no Ray Jobs API answered at {address}: is the cluster up and is this its "
            f"dashboard address (usually port 8265)? ({_first_line(exc)})"
        ) from exc
    if not skip_version_check:
        for warning in _version_warnings(address, headers):
            (report or (lambda message: None))(f"warning: {warning}")
    return client


def refresh_run(store: RunStore, record: RunRecord) -> RunRecord:
    """Bring a detached run's record up to date from its cluster (status, logs, end time)."""
    attempt = record.attempts[-1] if record.attempts else None
    address = record.cluster.get("dashboard_url")
    if record.status.is_terminal() or attempt is None or not address:
        return record
    from ray.job_submission import JobStatus

    client = connect(address, skip_version_check=True)
    status = client.get_job_status(attempt.submission_id)
    store.write_log(record.run_id, client.get_job_logs(attempt.submission_id))
    if status.is_terminal():
        final = {JobStatus.SUCCEEDED: RunStatus.SUCCEEDED, JobStatus.STOPPED: RunStatus.STOPPED}
        record.status = attempt.status = final.get(status, RunStatus.FAILED)
        record.ended_at = attempt.ended_at = utc_now()
        error = store.read_error(record.run_id)
        if error is not None and record.status is RunStatus.FAILED:
            record.message = attempt.message = f"{error.type}: {error.message}"
    store.save_record(record)
    return record


def cancel_run(store: RunStore, record: RunRecord) -> RunRecord:
    """Stop a run's Ray job on its cluster and record it as STOPPED."""
    record = refresh_run(store, record)
    if record.status.is_terminal():
        return record
    attempt = record.attempts[-1]
    client = connect(record.cluster["dashboard_url"], skip_version_check=True)
    client.stop_job(attempt.submission_id)
    record.status = attempt.status = RunStatus.STOPPED
    record.message = attempt.message = "cancelled with `flyray cancel`"
    record.ended_at = attempt.ended_at = utc_now()
    store.write_log(record.run_id, client.get_job_logs(attempt.submission_id))
    store.save_record(record)
    return record


def _version_warnings(address: str, headers: dict[str, str]) -> list[str]:
    request = urllib.request.Request(f"{address}/api/version", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=VERSION_TIMEOUT_S) as response:
            remote_ray = json.load(response).get("ray_version")
    except (urllib.error.URLError, OSError, ValueError):
        remote_ray = None
    from flyray.config.ray_images import ray_version

    return check_versions(
        address=address,
        local_ray=ray_version(),
        local_python=platform.python_version(),
        remote_ray=remote_ray,
        remote_python=None,  # the Jobs API does not say; the entrypoint checks pickled inputs
        via="jobs",
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
