"""One cheap call that proves an object-store run store answers, before a run starts anything.

A run writes its code bundle, inputs and record before any cluster or RayJob exists, and the
cluster reads them back; a store that does not answer, refuses the credentials or has no
bucket would otherwise fail half-way, with the client library's own error after its retries.
``check_reachable`` asks once, with one attempt and short timeouts, and raises a
``RunStoreError`` that names the store's URI and the cause. Error texts come from the server
or the client and hold no secret (a key id at most); credentials are never read here.

- ``s3://``: one ``ListObjectsV2`` (at most one key) under the store's prefix: a missing
  bucket, refused credentials and a closed endpoint each fail it; an empty prefix passes.
- other object stores: a listing of the store's root (a root not made yet passes).
- local folders and ``memory://``: nothing to check.
"""

from __future__ import annotations

from typing import Any

from flyray.errors import RunStoreError
from flyray.store.runstore import RunStore

__all__ = ["check_reachable"]

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 10
_NO_CHECK = ("file", "local", "memory")


def check_reachable(store: RunStore) -> None:
    """Raise ``RunStoreError`` naming ``store`` and why, unless it answers a listing."""
    from fsspec.core import split_protocol

    protocol, path = split_protocol(store.root)
    protocol = protocol or "file"
    if store.is_local or protocol in _NO_CHECK:
        return
    try:
        if protocol in ("s3", "s3a"):
            _list_s3(store.root, path or "")
        else:
            _list_root(store.root)
    except Exception as exc:
        raise RunStoreError(
            f"the run store {store.root} cannot be used: {_cause(exc, path or '')}; nothing "
            "was started (check the URI, the credentials in AWS_* or the cloud's own "
            "variables, and the endpoint)"
        ) from None


def _list_s3(root: str, path: str) -> None:
    """``ListObjectsV2`` once, through s3fs as the store uses it (same env, same config)."""
    from fsspec.core import url_to_fs

    fs, _ = url_to_fs(
        root,
        skip_instance_cache=True,
        config_kwargs={
            "retries": {"max_attempts": 1, "mode": "standard"},
            "connect_timeout": CONNECT_TIMEOUT_S,
            "read_timeout": READ_TIMEOUT_S,
        },
    )
    bucket, _, key = path.strip("/").partition("/")
    prefix = f"{key}/" if key else ""
    fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix, MaxKeys=1)


def _list_root(root: str) -> None:
    """A listing of the root; one that does not exist yet is fine (the first run makes it)."""
    from fsspec.core import url_to_fs

    fs, base = url_to_fs(root)
    try:
        fs.ls(base, detail=False)
    except FileNotFoundError:
        return


def _cause(exc: Exception, path: str) -> str:
    """What went wrong, in a person's words, with the client's or the server's own text."""
    text = str(exc).strip() or type(exc).__name__
    bucket = path.strip("/").split("/", 1)[0]
    if isinstance(exc, FileNotFoundError):
        return f"the bucket {bucket!r} does not exist ({text})"
    if isinstance(exc, PermissionError):
        return f"the credentials were refused ({text})"
    name = type(exc).__name__
    if name == "NoCredentialsError":
        return (
            "no credentials were found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE)"
        )
    if _is_unreachable(exc):
        return f"the endpoint did not answer ({text})"
    return f"{name}: {text}"


def _is_unreachable(exc: Any) -> bool:
    """A connection that could not be made or timed out (botocore's and the OS's errors)."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionError"})
