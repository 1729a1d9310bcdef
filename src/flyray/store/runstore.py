"""``RunStore``: every non-local run's record, inputs, outputs, error, manifest and logs.

A folder on this machine by default, or any fsspec URI (``s3://``, ``gs://``, ``file://``,
``memory://``), laid out as::

    <root>/runs/<run_id>/record.json      the RunRecord (written by the executor)
                         inputs.pkl       (args, kwargs), see flyray.store.serialization
                         outputs.pkl      the task's return value (written by the entrypoint)
                         error.json       ErrorInfo of a failed run (written by the entrypoint)
                         manifest.yaml    the RayJob manifest, for modes that render one
                         logs/job.log     the job's driver log, as fetched by the executor
    <root>/bundles/<sha256>.zip           code bundles, content-addressed and shared by runs

fsspec is imported when a store is created, not when flyray is.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyray.config.settings import DEFAULT_RUN_STORE
from flyray.errors import RunStoreError
from flyray.store.record import RunRecord, utc_now
from flyray.store.serialization import dumps, loads

__all__ = ["DEFAULT_RUN_STORE", "ErrorInfo", "RunStore"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_LIST_HINT = "see the runs there with `flyray runs list`"


@dataclass(frozen=True)
class ErrorInfo:
    """How a task failed: the exception's type name, its message and the traceback text."""

    type: str
    message: str
    traceback: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """The error info of ``exc``, with its full formatted traceback."""
        import traceback

        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(type=type(exc).__name__, message=str(exc), traceback=text)

    def to_dict(self) -> dict[str, str]:
        """Plain JSON-serialisable values."""
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorInfo:
        """The error info ``to_dict`` described; unknown keys are ignored."""
        return cls(
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            traceback=str(data.get("traceback", "")),
        )


class RunStore:
    """Runs and code bundles under one root: a local folder or an fsspec URI."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """Open the store at ``root`` (``~`` expands); nothing is created before a write.

        A local store's ``root`` is its absolute path, also when given as a ``file://`` URI.
        """
        from fsspec.core import url_to_fs

        text = os.fspath(root)
        if text.startswith("file://"):  # percent-encoded, as uri() writes it and Ray reads it
            from urllib.parse import urlsplit
            from urllib.request import url2pathname

            text = url2pathname(urlsplit(text).path)
        if "://" not in text:
            text = str(Path(text).expanduser().absolute())
        self.root = text
        # Other processes write here too (drivers, other callers): never list from a cache.
        options = {"use_listings_cache": False} if "://" in text else {}
        self._fs, self._base = url_to_fs(text, **options)
        self._base = self._base.rstrip("/") or "/"

    def __repr__(self) -> str:
        return f"RunStore({self.root!r})"

    @property
    def is_local(self) -> bool:
        """True when the store is a folder on this machine (a path or a ``file://`` URI)."""
        from fsspec.implementations.local import LocalFileSystem

        return isinstance(self._fs, LocalFileSystem)

    def uri(self, *parts: str) -> str:
        """The URI of a path inside the store (``file:///...`` for a local store)."""
        path = self._path(*parts)
        return Path(path).as_uri() if self.is_local else self._fs.unstrip_protocol(path)

    def local_path(self, *parts: str) -> Path:
        """The local path of a path inside the store; only for local stores."""
        if not self.is_local:
            raise RunStoreError(f"the run store {self.root} is not a local folder")
        return Path(self._path(*parts))

    # -- records ---------------------------------------------------------------------------

    def save_record(self, record: RunRecord) -> None:
        """Write the run's record, stamping its ``updated_at`` (atomically on local disks)."""
        record.updated_at = utc_now()
        text = json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n"
        self._write(self._run_path(record.run_id, "record.json"), text.encode())

    def load_record(self, run_id: str) -> RunRecord:
        """The record of ``run_id``; RunStoreError if the store has no such run."""
        data = self._read(self._run_path(run_id, "record.json"))
        if data is None:
            raise RunStoreError(f"no run {run_id!r} in the run store {self.root}; {_LIST_HINT}")
        return self._parse_record(data, run_id)

    def list_records(self) -> list[RunRecord]:
        """Every run's record, newest first; unreadable records are skipped."""
        try:
            folders = self._fs.ls(self._path("runs"), detail=False)
        except FileNotFoundError:
            return []
        paths = [posixpath.join(folder, "record.json") for folder in folders]
        found = self._fs.cat(paths, on_error="omit") if paths else {}
        records = []
        for path, data in found.items():
            run_id = posixpath.basename(posixpath.dirname(path))
            with contextlib.suppress(RunStoreError):
                records.append(self._parse_record(data, run_id))
        return sorted(records, key=lambda r: (r.created_at, r.run_id), reverse=True)

    # -- inputs, outputs and errors ------------------------------------------------------

    def write_inputs(self, run_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Store the arguments the task will be called with."""
        self._write(self._run_path(run_id, "inputs.pkl"), dumps((tuple(args), dict(kwargs))))

    def read_inputs(self, run_id: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments stored by ``write_inputs``."""
        data = self._read(self._run_path(run_id, "inputs.pkl"))
        if data is None:
            raise RunStoreError(
                f"run {run_id!r} has no inputs in the run store {self.root}; submit it again"
                f" with the same store ({_LIST_HINT})"
            )
        args, kwargs = loads(data, what=f"inputs of run {run_id}")
        return tuple(args), dict(kwargs)

    def write_outputs(self, run_id: str, value: Any) -> None:
        """Store the task's return value."""
        self._write(self._run_path(run_id, "outputs.pkl"), dumps(value))

    def read_outputs(self, run_id: str) -> Any:
        """The task's return value; RunStoreError while there is none."""
        data = self._read(self._run_path(run_id, "outputs.pkl"))
        if data is None:
            raise RunStoreError(
                f"run {run_id!r} has no outputs in the run store {self.root}: it has not"
                f" finished or it failed; see `flyray logs {run_id}`"
            )
        return loads(data, what=f"outputs of run {run_id}")

    def write_error(self, run_id: str, error: ErrorInfo) -> None:
        """Store how the task failed."""
        text = json.dumps(error.to_dict(), indent=2, sort_keys=True) + "\n"
        self._write(self._run_path(run_id, "error.json"), text.encode())

    def read_error(self, run_id: str) -> ErrorInfo | None:
        """How the task failed, or None if no error was stored."""
        data = self._read(self._run_path(run_id, "error.json"))
        if data is None:
            return None
        try:
            return ErrorInfo.from_dict(json.loads(data))
        except (ValueError, AttributeError) as exc:
            where = self.uri("runs", run_id, "error.json")
            message = f"the error of run {run_id!r} ({where}) is corrupt: {exc}"
            raise RunStoreError(message) from None

    # -- manifest and logs -----------------------------------------------------------------

    def write_manifest(self, run_id: str, text: str) -> None:
        """Store the RayJob manifest the run was started from."""
        self._write(self._run_path(run_id, "manifest.yaml"), text.encode())

    def read_manifest(self, run_id: str) -> str | None:
        """The run's manifest, or None for runs without one."""
        data = self._read(self._run_path(run_id, "manifest.yaml"))
        return None if data is None else data.decode()

    def write_log(self, run_id: str, text: str) -> None:
        """Replace the run's job log."""
        self._write(self._run_path(run_id, "logs", "job.log"), text.encode())

    def append_log(self, run_id: str, text: str) -> None:
        """Add to the end of the run's job log (read-modify-write on object stores)."""
        path = self._run_path(run_id, "logs", "job.log")
        if self.is_local:
            self._fs.makedirs(posixpath.dirname(path), exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
        else:
            self._write(path, (self.read_log(run_id) + text).encode())

    def read_log(self, run_id: str) -> str:
        """The run's job log; empty when there is none yet."""
        data = self._read(self._run_path(run_id, "logs", "job.log"))
        return "" if data is None else data.decode(errors="replace")

    # -- code bundles ----------------------------------------------------------------------

    def has_bundle(self, sha: str) -> bool:
        """True if the bundle with this sha256 is stored already."""
        return bool(self._fs.exists(self._bundle_path(sha)))

    def put_bundle(self, sha: str, data: bytes) -> str:
        """Store a bundle under its sha256 (once: an existing one is kept); returns its URI."""
        import hashlib

        if hashlib.sha256(data).hexdigest() != sha:
            raise RunStoreError(f"bundle {sha} does not match the sha256 of its {len(data)} bytes")
        path = self._bundle_path(sha)
        if not self._fs.exists(path):
            self._write(path, data)
        return self.uri("bundles", f"{sha}.zip")

    # -- paths and bytes -------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        """The fsspec path of ``parts`` under the root."""
        return posixpath.join(self._base, *parts)

    def _run_path(self, run_id: str, *parts: str) -> str:
        """A path inside the folder of ``run_id``, which must be a plain name."""
        if not isinstance(run_id, str) or not _NAME.match(run_id):
            raise RunStoreError(
                f"run id {run_id!r} is not a valid run id: letters, digits, '.', '_' and '-',"
                f" not starting with a symbol; {_LIST_HINT}"
            )
        return self._path("runs", run_id, *parts)

    def _bundle_path(self, sha: str) -> str:
        """Where the bundle with this sha256 lives."""
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise RunStoreError(f"bundle id {sha!r} is not a sha256 (64 lowercase hex digits)")
        return self._path("bundles", f"{sha}.zip")

    def _parse_record(self, data: bytes, run_id: str) -> RunRecord:
        """The RunRecord in ``data``; RunStoreError naming the file when it is corrupt."""
        try:
            return RunRecord.from_dict(json.loads(data))
        except (ValueError, TypeError, AttributeError) as exc:
            where = self.uri("runs", run_id, "record.json")
            raise RunStoreError(
                f"the record of run {run_id!r} ({where}) is corrupt: {exc}"
            ) from None

    def _read(self, path: str) -> bytes | None:
        """The bytes at ``path``, or None if there is no such file."""
        try:
            return bytes(self._fs.cat_file(path))
        except FileNotFoundError:
            return None

    def _write(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path``: local files through a temp file and a rename (mode 0600)."""
        if not self.is_local:
            self._fs.pipe_file(path, data)
            return
        folder = posixpath.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
