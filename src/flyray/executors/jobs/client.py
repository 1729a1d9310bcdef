"""The client of a Ray Jobs API, whose errors all go through ``flyray.plugins.ray.errors``.

Every executor that talks to a Jobs API gets its client from a ``JobsClientFactory``:
``(address, headers) -> client`` with ``JobSubmissionClient``'s methods (``submit_job``,
``get_job_status``, ``get_job_logs``, ``get_job_info``, ``stop_job``). ``ray_jobs_client`` is
the real one; tests pass a fake.
"""

from __future__ import annotations

import contextlib
import json
import platform
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from flyray.executors.base import ProgressCallback
from flyray.executors.jobs.auth import ray_auth_headers
from flyray.executors.jobs.versions import check_versions
from flyray.plugins.ray.errors import ray_error

__all__ = ["JobsClientFactory", "RayJobsClient", "connect", "ray_jobs_client"]

JobsClientFactory = Callable[[str, Mapping[str, str]], Any]
VERSION_TIMEOUT_S = 10.0  # how long a cluster's /api/version may take to answer


class RayJobsClient:
    """A Jobs API client (Ray's ``JobSubmissionClient``, or a fake) whose errors are flyray's.

    Whatever the client raises is sorted by ``flyray.plugins.ray.errors.ray_error`` (unreachable,
    token, unknown job, server error, version skew) into an error naming the call, the address
    and the cause, quoting Ray; ``cluster_ray`` is the cluster's Ray version when it is known.
    """

    def __init__(
        self,
        client: Any,
        address: str,
        *,
        token_sent: bool = False,
        cluster_ray: str | None = None,
    ) -> None:
        self._client, self.address, self.token_sent = client, address, token_sent
        self.cluster_ray = cluster_ray or getattr(client, "_server_ray_version", None)

    def submit_job(
        self, *, entrypoint: str, runtime_env: dict[str, Any], submission_id: str
    ) -> str:
        """Submit a job under ``submission_id``; its id."""
        return self._call(
            f"submit job {submission_id}",
            None,
            self._client.submit_job,
            entrypoint=entrypoint,
            runtime_env=runtime_env,
            submission_id=submission_id,
        )

    def get_job_status(self, submission_id: str) -> Any:
        """The job's ``JobStatus``."""
        return self._call(
            f"get the status of job {submission_id}",
            submission_id,
            self._client.get_job_status,
            submission_id,
        )

    def get_job_logs(self, submission_id: str) -> str:
        """The job's driver log so far."""
        return self._call(
            f"get the logs of job {submission_id}",
            submission_id,
            self._client.get_job_logs,
            submission_id,
        )

    def get_job_info(self, submission_id: str) -> Any:
        """The job's ``JobDetails`` (status, message, error type)."""
        return self._call(
            f"get job {submission_id}", submission_id, self._client.get_job_info, submission_id
        )

    def stop_job(self, submission_id: str) -> bool:
        """Ask Ray to stop the job; whether it was still running."""
        return self._call(
            f"stop job {submission_id}", submission_id, self._client.stop_job, submission_id
        )

    def _call(
        self, action: str, job: str | None, method: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            error = ray_error(
                exc,
                address=self.address,
                action=action,
                token_sent=self.token_sent,
                job=job,
                cluster_ray=self.cluster_ray,
            )
            if error is None:
                raise
            raise error from exc


def ray_jobs_client(address: str, headers: Mapping[str, str]) -> RayJobsClient:
    """A client of the Jobs API at ``address``; connection and token errors made flyray's."""
    from ray.job_submission import JobSubmissionClient

    with _translated(address, "connect", token_sent=bool(headers)):
        client = JobSubmissionClient(address, headers=dict(headers))
    return RayJobsClient(client, address, token_sent=bool(headers))


def connect(
    address: str,
    headers: Mapping[str, str] | None = None,
    *,
    factory: JobsClientFactory = ray_jobs_client,
    skip_version_check: bool = False,
    report: ProgressCallback | None = None,
) -> RayJobsClient:
    """A Jobs API client for ``address``; a Ray or Python that differs from ours is reported.

    ``headers`` default to the token the environment gives (``RAY_AUTH_TOKEN`` and friends).
    Whatever ``factory`` makes, its errors are made flyray's here.
    """
    if headers is None:
        headers = ray_auth_headers()
    with _translated(address, "connect", token_sent=bool(headers)):
        client = factory(address, headers)
    if not isinstance(client, RayJobsClient):
        client = RayJobsClient(client, address, token_sent=bool(headers))
    if not skip_version_check:
        for warning in _version_warnings(address, headers):
            (report or (lambda message: None))(f"warning: {warning}")
    return client


@contextlib.contextmanager
def _translated(address: str, action: str, *, token_sent: bool) -> Iterator[None]:
    """Ray's client errors raised inside made flyray's (``ray_error``); others pass."""
    try:
        yield
    except Exception as exc:
        error = ray_error(exc, address=address, action=action, token_sent=token_sent)
        if error is None:
            raise
        raise error from exc


def _version_warnings(address: str, headers: Mapping[str, str]) -> list[str]:
    request = urllib.request.Request(f"{address}/api/version", headers=dict(headers))
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
