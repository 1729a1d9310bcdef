"""Ray's client errors made flyray's, in this one place: Jobs API, dashboard and Ray Client.

Ray says what went wrong in many shapes: ``RuntimeError("Request failed with status code 404:
...")`` for an HTTP error, ``requests``' or the builtin ``ConnectionError`` when nothing
answers, ``AuthenticationError`` for a missing (401) or refused (403) token, ``RuntimeError(
"Version mismatch: ...")`` when a Ray Client's versions differ from the cluster's. ``ray_error``
sorts each into a cause and gives the ``RayClusterError`` subclass whose message names the
address, says the cause in words and what to do, and quotes Ray; anything else is not Ray's
client failing (None), so it stays as it is.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path

from flyray.errors import (
    ClusterAuthError,
    ClusterServerError,
    ClusterUnreachableError,
    RayClusterError,
    RayJobNotFoundError,
    VersionSkewError,
)

__all__ = ["TOKEN_HINT", "first_paragraph", "ray_client_sends_token", "ray_error"]

TOKEN_HINT = (
    "set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH (or RAY_AUTH_MODE=token with ~/.ray/auth_token) "
    "to the cluster's token"
)
_STATUS = re.compile(r"(?:status code|returned) (\d{3})")
_RAY_VERSIONS = re.compile(r"Ray(?: version)?:? (\d+\.\d+[0-9A-Za-z.+-]*)")
_SERVER_FAILED = "failure from server"  # a Ray Client server that could not start the session
_TRACEBACK = "Traceback (most recent call last):"
_PYTHON_VERSIONS = re.compile(r"Python: (\d+\.\d+[0-9A-Za-z.+-]*)")
_REASONS = (  # words in an error (or the errors it was raised from) -> the reason, said plainly
    (("refused",), "connection refused"),
    (
        ("name or service not known", "name resolution", "nodename nor servname", "getaddrinfo"),
        "unknown host",
    ),
    (("timed out", "timeout"), "timed out"),
    (("reset by peer", "remotedisconnected", "connection aborted"), "connection dropped"),
)


def ray_error(
    exc: BaseException,
    *,
    address: str,
    action: str,
    token_sent: bool,
    job: str | None = None,
    cluster_ray: str | None = None,
) -> RayClusterError | None:
    """The flyray error for ``exc``, raised by a Ray client asked to ``action`` at ``address``.

    ``token_sent`` says whether the client sent a token, ``job`` is the submission id the call
    was about, ``cluster_ray`` the cluster's Ray version when known. None: not a client error.
    """
    said = first_paragraph(exc)
    status = _http_status(exc)
    where = f"the Ray cluster at {address}"
    fields = {"address": address, "ray_message": said, "token_sent": token_sent}
    if _is_auth(exc) or status in (401, 403):
        return ClusterAuthError(_auth_message(where, action, token_sent, said), **fields)
    skew = _versions(said) or _http_skew(status, cluster_ray)
    if skew:
        return VersionSkewError(
            f"{where} runs {skew[0]}, this process {skew[1]}, and could not {action}: "
            f"use matching versions (Ray said: {said})",
            **fields,
        )
    if status == 404 and job is not None:
        return RayJobNotFoundError(
            f"{where} does not know Ray job {job} (it was restarted, or the job was deleted), "
            f"so flyray could not {action} (Ray said: {said})",
            **fields,
        )
    if (status or 0) >= 500 or _SERVER_FAILED in said:
        code = f" ({status})" if status else ""
        return ClusterServerError(
            f"{where} failed with a server error{code} when asked to {action}: see the "
            f"logs on its head node (dashboard.log, ray_client_server*.err) (Ray said: {said})",
            **fields,
        )
    if status is not None:
        return RayClusterError(
            f"{where} refused to {action} (HTTP {status}): is this a Ray dashboard, usually "
            f"port 8265? (Ray said: {said})",
            **fields,
        )
    if _is_network(exc):
        message = _unreachable_message(exc, address, action, token_sent, said)
        return ClusterUnreachableError(message, **fields)
    return None


def ray_client_sends_token(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a Ray Client here sends a token: Ray needs RAY_AUTH_MODE=token and a token."""
    environ = os.environ if environ is None else environ
    if environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return False
    sources = (environ.get("RAY_AUTH_TOKEN"), environ.get("RAY_AUTH_TOKEN_PATH"))
    return any(sources) or Path("~/.ray/auth_token").expanduser().exists()


def first_paragraph(exc: BaseException) -> str:
    """What Ray said, up to its first blank line, on one line (its long hints left out); a
    server's traceback in it is shortened to its last line."""
    text = str(exc).strip()
    if _TRACEBACK in text:
        head, _, trace = text.partition(_TRACEBACK)
        text = f"{head.strip()} {(trace.strip().splitlines() or [''])[-1]}".strip()
    text = text.split("\n\n")[0]
    return (
        " ".join(line.strip() for line in text.splitlines() if line.strip()) or type(exc).__name__
    )


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)  # requests' HTTPError
    code = getattr(response, "status_code", None)
    if isinstance(code, int):
        return code
    if isinstance(exc, RuntimeError) and (match := _STATUS.search(str(exc))):
        return int(match.group(1))
    return None


def _is_network(exc: BaseException) -> bool:
    """A connection that failed: refused, timed out, unknown host, dropped (not a file error)."""
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    return isinstance(exc, OSError) and type(exc).__module__.startswith(("requests", "urllib3"))


def _is_auth(exc: BaseException) -> bool:
    return any(
        kind.__name__ == "AuthenticationError" and kind.__module__.startswith("ray")
        for kind in type(exc).__mro__
    )


def _auth_message(where: str, action: str, token_sent: bool, said: str) -> str:
    if token_sent:
        return (
            f"{where} refused the token flyray sent, so it could not {action}: the token is "
            f"not this cluster's; {TOKEN_HINT} (Ray said: {said})"
        )
    return (
        f"{where} needs a token and flyray sent none, so it could not {action}: {TOKEN_HINT} "
        f"(Ray said: {said})"
    )


def _versions(said: str) -> tuple[str, str] | None:
    """(cluster's, this process's) versions from Ray's own version-mismatch errors."""
    if "Version mismatch" in said:
        rays, pythons = _RAY_VERSIONS.findall(said), _PYTHON_VERSIONS.findall(said)
        if len(rays) == 2 and len(pythons) == 2:
            return f"Ray {rays[0]}, Python {pythons[0]}", f"Ray {rays[1]}, Python {pythons[1]}"
    if "is running on the cluster" in said and (match := _RAY_VERSIONS.search(said)):
        return f"Ray {match.group(1)}", f"Ray {_local_ray()}"
    return None


def _http_skew(status: int | None, cluster_ray: str | None) -> tuple[str, str] | None:
    """A refused or failed request to a cluster whose Ray differs: the versions, else None."""
    if status is None or status in (401, 403, 404) or status < 400 or not cluster_ray:
        return None
    local = _local_ray()
    return (f"Ray {cluster_ray}", f"Ray {local}") if cluster_ray != local else None


def _local_ray() -> str:
    from flyray.config.ray_images import ray_version

    return ray_version()


def _unreachable_message(
    exc: BaseException, address: str, action: str, token_sent: bool, said: str
) -> str:
    hint = ""
    if address.startswith("ray://"):
        check = "its Ray Client address (usually port 10001)"
        if not token_sent:  # a Ray Client without a token is not refused: it times out
            hint = f"; if it uses token authentication, {TOKEN_HINT}"
    else:
        check = "its dashboard address (usually port 8265)"
    return (
        f"no Ray cluster answered at {address} ({_reason(exc)}), so flyray could not {action}: "
        f"check that the cluster is up and that this is {check}{hint} (Ray said: {said})"
    )


def _reason(exc: BaseException) -> str:
    """Why nothing answered, from ``exc`` and the errors it was raised from."""
    texts, seen = [], exc
    while seen is not None and len(texts) < 5:
        texts.append(f"{type(seen).__name__} {seen}".lower())
        seen = seen.__cause__ or seen.__context__
    text = " ".join(texts)
    for words, reason in _REASONS:
        if any(word in text for word in words):
            return reason
    return "no answer"
