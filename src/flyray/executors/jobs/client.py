"""The client of a Ray Jobs API, and the one place where Ray's client errors become flyray's.

Every executor that talks to a Jobs API gets its client from a ``JobsClientFactory``:
``(address, headers) -> client`` with ``JobSubmissionClient``'s methods (``submit_job``,
``get_job_status``, ``get_job_logs``, ``get_job_info``, ``stop_job``). ``ray_jobs_client`` is
the real one; tests pass a fake.
"""

from __future__ import annotations

import json
import platform
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from flyray.errors import SubmissionError
from flyray.executors.base import ProgressCallback
from flyray.executors.jobs.auth import ray_auth_headers
from flyray.executors.jobs.versions import check_versions

__all__ = ["JobsClientFactory", "RayJobsClient", "connect", "ray_jobs_client"]

JobsClientFactory = Callable[[str, Mapping[str, str]], Any]
VERSION_TIMEOUT_S = 10.0  # how long a cluster's /api/version may take to answer


class RayJobsClient:
    """Ray's ``JobSubmissionClient`` with its errors made flyray's ``SubmissionError``.

    Ray raises ``RuntimeError`` for an HTTP error status and ``requests``' errors (``OSError``)
    when the cluster stops answering; each becomes one line naming the call and the address.
    """

    def __init__(self, client: Any, address: str) -> None:
        self._client, self.address = client, address

    def submit_job(
        self, *, entrypoint: str, runtime_env: dict[str, Any], submission_id: str
    ) -> str:
        """Submit a job under ``submission_id``; its id."""
        return self._call(
            "submit job",
            self._client.submit_job,
            entrypoint=entrypoint,
            runtime_env=runtime_env,
            submission_id=submission_id,
        )

    def get_job_status(self, submission_id: str) -> Any:
        """The job's ``JobStatus``."""
        return self._call(
            f"get the status of job {submission_id}", self._client.get_job_status, submission_id
        )

    def get_job_logs(self, submission_id: str) -> str:
        """The job's driver log so far."""
        return self._call(
            f"get the logs of job {submission_id}", self._client.get_job_logs, submission_id
        )

    def get_job_info(self, submission_id: str) -> Any:
        """The job's ``JobDetails`` (status, message, error type)."""
        return self._call(f"get job {submission_id}", self._client.get_job_info, submission_id)

    def stop_job(self, submission_id: str) -> bool:
        """Ask Ray to stop the job; whether it was still running."""
        return self._call(f"stop job {submission_id}", self._client.stop_job, submission_id)

    def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (RuntimeError, OSError) as exc:
            raise SubmissionError(
                f"the Ray Jobs API at {self.address} could not {what}: {_first_line(exc)}"
            ) from exc


def ray_jobs_client(address: str, headers: Mapping[str, str]) -> RayJobsClient:
    """A client of the Jobs API at ``address``; connection and token errors made flyray's."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    try:
        return RayJobsClient(JobSubmissionClient(address, headers=dict(headers)), address)
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


def connect(
    address: str,
    headers: Mapping[str, str] | None = None,
    *,
    factory: JobsClientFactory = ray_jobs_client,
    skip_version_check: bool = False,
    report: ProgressCallback | None = None,
) -> Any:
    """A Jobs API client for ``address``; a Ray or Python that differs from ours is reported.

    ``headers`` default to the token the environment gives (``RAY_AUTH_TOKEN`` and friends).
    """
    if headers is None:
        headers = ray_auth_headers()
    client = factory(address, headers)
    if not skip_version_check:
        for warning in _version_warnings(address, headers):
            (report or (lambda message: None))(f"warning: {warning}")
    return client


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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
