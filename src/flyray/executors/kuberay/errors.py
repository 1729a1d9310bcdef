"""Kubernetes API errors, translated in one place into flyray errors a user can act on.

``translate`` is the only function that turns an ``ApiException`` or a connection error into
a flyray error; ``is_transient`` says which of them are worth another try (5xx, 429,
connection resets and timeouts), and ``retry_delay`` how long to wait before it.
"""

from __future__ import annotations

import json

from flyray.errors import FlyrayError, SubmissionError

__all__ = [
    "TRANSIENT_STATUSES",
    "is_transient",
    "retry_delay",
    "server_message",
    "status_of",
    "translate",
]

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
BASE_DELAY_S = 0.25  # first wait between attempts; doubles each time
MAX_DELAY_S = 4.0  # longest wait, also for a server's Retry-After
# A TLS handshake or connection cut short (a load balancer with no healthy backend, a restart)
_CUT = ("UNEXPECTED_EOF", "EOF occurred", "Connection reset", "Connection aborted")

_HINTS = {
    401: "the server refused the credentials: log in again, or pick another --context",
    403: "forbidden: ask a cluster admin for a Role that allows it in this namespace",
    404: "not found",
    409: "it already exists, or it changed meanwhile",
    410: "the resource version it asked for is too old",
}


def is_transient(exc: BaseException) -> bool:
    """True for errors that another attempt may not meet: 5xx, 429, resets, timeouts."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        if exc.status == 0:  # the client's own failure: a cut connection is worth a retry
            reason = str(exc.reason or "")
            return (
                any(sign in reason for sign in _CUT) and "CERTIFICATE_VERIFY_FAILED" not in reason
            )
        return exc.status in TRANSIENT_STATUSES
    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def retry_delay(attempt: int, exc: BaseException | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling, capped.

    A 429 or 503 that says ``Retry-After: N`` waits N seconds (capped too).
    """
    headers = getattr(exc, "headers", None) or {}
    try:
        asked = float(headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        asked = 0.0
    return min(MAX_DELAY_S, max(asked, BASE_DELAY_S * 2 ** (attempt - 1)))


def status_of(error: BaseException) -> int | None:
    """The HTTP status behind a translated error (its ``__cause__``), if there was one."""
    return getattr(error.__cause__, "status", None)


def server_message(exc: BaseException) -> str:
    """What the API server said: its Status ``message``, else the body or the reason."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if body:
        try:
            status = json.loads(body)
        except ValueError:
            status = None
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
        return body.strip().splitlines()[0][:500]
    return str(getattr(exc, "reason", None) or exc).strip() or type(exc).__name__


# fields flyray writes by default that an older KubeRay's CRD does not have: (field, since)
_NEWER_FIELDS = (("spec.rayClusterSpec.authOptions", "1.6.0"),)


def _version_hint(message: str) -> str:
    """For an unknown field that only a newer KubeRay has: how to write for the one installed."""
    for name, since in _NEWER_FIELDS:
        if f'unknown field "{name}"' in message:
            return (
                f"; KubeRay added {name} in {since}: upgrade KubeRay, or set the "
                "kuberay_version setting (FLYRAY_KUBERAY_VERSION, --kuberay-version) to the "
                "version installed"
            )
    return ""


def translate(
    exc: BaseException, *, what: str, server: str | None = None, attempts: int = 1
) -> FlyrayError | None:
    """The flyray error for ``exc`` met while trying to ``what``; None for anything else.

    ``what`` reads after "could not", e.g. ``create RayJob ml/train-r01``; ``attempts`` is how
    many tries were made, for errors that were retried.
    """
    import urllib3
    from kubernetes.client.exceptions import ApiException

    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if isinstance(exc, ApiException):
        status, message = exc.status, server_message(exc)
        label = f"{status} {exc.reason}" if exc.reason else str(status)
        if status == 0:  # the client's own failure, e.g. TLS
            return SubmissionError(
                f"could not {what}: {_first_line(exc.reason or exc)} (check the kubeconfig's "
                "server address and certificate authority)"
            )
        if status in TRANSIENT_STATUSES:
            return SubmissionError(
                f"could not {what}: the Kubernetes API server kept answering {label}{tries} "
                f"({message}); try again later"
            )
        if status in (400, 422):
            return SubmissionError(
                f"could not {what}: the API server rejected it: {message}{_version_hint(message)}"
            )
        hint = _HINTS.get(status)
        return SubmissionError(
            f"could not {what}: {hint} ({label}: {message})"
            if hint
            else f"could not {what}: {label}: {message}"
        )
    if isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
        where = f" at {server}" if server else ""
        return SubmissionError(
            f"could not {what}: no answer from the Kubernetes API server{where}{tries} "
            f"({_first_line(exc)}); is the cluster up, and is the kubeconfig context the "
            "right one?"
        )
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
