"""``ray_error``: every shape of Ray client error becomes its cause, naming address and Ray's words.

Like httpx's test of its one mapping function: one row per case, the exceptions as Ray raises
them (their texts copied from Ray 2.60's clients on this machine).
"""

from __future__ import annotations

import socket

import pytest
import requests
from ray.exceptions import AuthenticationError

from flyray.config.ray_images import ray_version
from flyray.errors import (
    ClusterAuthError,
    ClusterServerError,
    ClusterUnreachableError,
    RayClusterError,
    RayJobNotFoundError,
    SubmissionError,
    VersionSkewError,
)
from flyray.plugins.ray.errors import ray_client_sends_token, ray_error

HTTP, CLIENT = "http://10.0.0.1:8265", "ray://10.0.0.1:10001"
LOCAL = ray_version()


def _raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    """``exc`` as Ray raises it inside an ``except`` of ``cause`` (its context)."""
    try:
        try:
            raise cause
        except BaseException:
            raise exc  # noqa: B904 (Ray does this)
    except BaseException as raised:
        return raised


CASES = [
    pytest.param(
        AuthenticationError(
            "Authentication required: Unauthorized: Missing authentication token\n\nToken "
            "authentication is enabled but no authentication token was found."
        ),
        {},
        ClusterAuthError,
        ["needs a token and flyray sent none", "RAY_AUTH_TOKEN", "Missing authentication token"],
        id="auth-no-token",
    ),
    pytest.param(
        AuthenticationError(
            "Authentication failed: Forbidden: Invalid authentication token\n\nThe token is "
            "invalid or incorrect."
        ),
        {"token_sent": True},
        ClusterAuthError,
        ["refused the token flyray sent", "Invalid authentication token"],
        id="auth-wrong-token",
    ),
    pytest.param(
        RuntimeError("Request failed with status code 404: Job r1-1 does not exist.."),
        {"job": "r1-1"},
        RayJobNotFoundError,
        ["does not know Ray job r1-1", "Job r1-1 does not exist"],
        id="job-not-found",
    ),
    pytest.param(
        RuntimeError("Request failed with status code 500: Internal Server Error."),
        {"job": "r1-1", "cluster_ray": LOCAL},
        ClusterServerError,
        ["server error (500)", "Internal Server Error"],
        id="server-error",
    ),
    pytest.param(
        RuntimeError("Request failed with status code 500: Internal Server Error."),
        {"job": "r1-1", "cluster_ray": "2.9.0"},
        VersionSkewError,
        [f"runs Ray 2.9.0, this process Ray {LOCAL}", "Internal Server Error"],
        id="server-error-on-another-ray",
    ),
    pytest.param(
        ConnectionError(
            "Initialization failure from server:\nTraceback (most recent call last):\n  File "
            '"proxier.py", line 772, in Datapath\n    raise RuntimeError(\nRuntimeError: '
            "Starting Ray client server failed. See ray_client_server_23000.err for detailed logs."
        ),
        {"address": CLIENT},
        ClusterServerError,
        [
            "failed with a server error when asked to get the job",
            "(Ray said: Initialization failure from server: RuntimeError: Starting Ray client",
        ],
        id="ray-client-server-failed",
    ),
    pytest.param(
        RuntimeError("Request failed with status code 400: unexpected field 'labels'."),
        {"cluster_ray": LOCAL},
        RayClusterError,
        ["refused to get the job (HTTP 400)", "unexpected field 'labels'"],
        id="refused-request",
    ),
    pytest.param(
        RuntimeError("Version check returned 404. Jobs API is not supported on the Ray cluster."),
        {},
        RayClusterError,
        ["refused to get the job (HTTP 404): is this a Ray dashboard", "Version check returned"],
        id="not-a-dashboard",
    ),
    pytest.param(
        RuntimeError(
            "Ray version 1.8.0 is running on the cluster. Jobs API is not supported on the Ray "
            "cluster. Please ensure the cluster is running Ray 1.9 or higher."
        ),
        {},
        VersionSkewError,
        [f"runs Ray 1.8.0, this process Ray {LOCAL}", "Ray 1.9 or higher"],
        id="jobs-api-too-old",
    ),
    pytest.param(
        RuntimeError(
            "Version mismatch: The cluster was started with:\n    Ray: 2.9.0\n    Python: 3.10.1\n"
            "This process on Ray Client was started with:\n    Ray: 2.60.0\n    Python: 3.11.7\n"
        ),
        {"address": CLIENT},
        VersionSkewError,
        ["runs Ray 2.9.0, Python 3.10.1, this process Ray 2.60.0, Python 3.11.7"],
        id="ray-client-version-mismatch",
    ),
    pytest.param(
        requests.exceptions.ConnectionError(
            "HTTPConnectionPool(host='10.0.0.1', port=8265): Max retries exceeded with url: "
            '/api/jobs/r1-1 (Caused by NewConnectionError("Failed to establish a new '
            'connection: [Errno 111] Connection refused"))'
        ),
        {},
        ClusterUnreachableError,
        ["no Ray cluster answered at", "(connection refused)", "dashboard address"],
        id="refused",
    ),
    pytest.param(
        _raised_from(
            ConnectionError(f"Failed to connect to Ray at address: {HTTP}."),
            socket.gaierror(-2, "Name or service not known"),
        ),
        {},
        ClusterUnreachableError,
        ["(unknown host)", "Failed to connect to Ray at address"],
        id="unknown-host",
    ),
    pytest.param(
        requests.exceptions.ReadTimeout("HTTPConnectionPool: Read timed out. (read timeout=10)"),
        {},
        ClusterUnreachableError,
        ["(timed out)"],
        id="timed-out",
    ),
    pytest.param(
        ConnectionError("ray client connection timeout"),
        {"address": CLIENT},
        ClusterUnreachableError,
        ["(timed out)", "Ray Client address", "if it uses token authentication, set RAY_AUTH"],
        id="ray-client-timeout-without-token",
    ),
]


@pytest.mark.parametrize(("exc", "context", "kind", "said"), CASES)
def test_each_ray_error_becomes_its_cause_naming_the_address_and_quoting_ray(
    exc, context, kind, said
):
    context = {"address": HTTP, "action": "get the job", "token_sent": False, **context}
    error = ray_error(exc, **context)
    assert type(error) is kind and isinstance(error, SubmissionError)
    message = str(error)
    assert context["address"] in message and error.address == context["address"]
    assert [text for text in said if text not in message] == [], message
    assert "\n" not in message  # Ray's long hints are left out: one line
    assert error.ray_message and error.ray_message in message
    assert error.token_sent is context["token_sent"]


def test_the_causes_have_names():
    assert [kind.cause for kind in (ClusterUnreachableError, ClusterAuthError)] == [
        "unreachable",
        "auth",
    ]
    assert [kind.cause for kind in (RayJobNotFoundError, ClusterServerError)] == [
        "not_found",
        "server_error",
    ]
    assert (VersionSkewError.cause, RayClusterError.cause) == ("version_skew", "refused")


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("status"),
        ValueError("bad input"),
        RuntimeError("the task's own"),
        FileNotFoundError(2, "No such file or directory"),
    ],
)
def test_other_errors_are_not_ray_client_errors(exc):
    assert ray_error(exc, address=HTTP, action="x", token_sent=False) is None


def test_the_ray_client_sends_a_token_only_with_token_mode_and_a_token(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    assert not ray_client_sends_token({"RAY_AUTH_TOKEN": "t"})
    assert not ray_client_sends_token({"RAY_AUTH_MODE": "token"})
    assert ray_client_sends_token({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "t"})
    assert ray_client_sends_token({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": "/x"})
