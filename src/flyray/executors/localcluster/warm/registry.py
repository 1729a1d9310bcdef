"""The warm-cluster registry: one JSON file per cluster in ``clusters_dir``, one lock for writes.

Why JSON files rather than SQLite: there are a handful of small entries, each written whole,
that a person may want to read (``cat ~/.flyray/clusters/ray-env.json``). Every write goes
to a temporary file that is fsynced and renamed over the entry, so a crash leaves the old
entry or the new one, never half of one; reads therefore need no lock. Read-modify-write
(``update``) holds an ``flock`` on ``.lock``, which serialises flyray processes and which the
kernel releases when a holder dies. Holders keep it for milliseconds: nobody stops or starts
Ray nodes while holding it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flyray.config.names import check_dns1123_label
from flyray.errors import ConfigError

__all__ = ["Process", "Registry", "WarmCluster"]

STARTING, RUNNING, STOPPING = "starting", "running", "stopping"
KEPT = "kept"  # a run's transient cluster kept for its TTL: listed, stopped on time, never leased
_SUFFIX = ".json"
_TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Process:
    """A process by pid and start time (/proc clock ticks), so a reused pid is not mistaken."""

    pid: int
    start: int

    @classmethod
    def current(cls) -> Process:
        """This process."""
        from flyray.executors.localcluster.procs import start_time

        return cls(os.getpid(), start_time(os.getpid()) or 0)

    def is_running(self) -> bool:
        """True while this very process runs."""
        from flyray.executors.localcluster.procs import is_running

        return is_running(self.pid, self.start)


@dataclass
class WarmCluster:
    """One warm cluster: what it runs (``key``), where it is, who keeps it, who uses it.

    ``owner`` is the process that stops it: ``flyray cluster up`` while it starts, then its
    keeper. ``leases`` are the runs using it now ({lease id: process}); ``last_used`` and
    ``idle_timeout`` tell the keeper when to stop it. ``leaders`` are the nodes' ``ray start``
    processes ({pid: start time}); the auth token is the file ``token_path`` (mode 0600).
    """

    name: str
    key: dict[str, Any]
    source: str
    idle_timeout: float
    owner: Process
    state: str = STARTING
    nodes: int = 0
    temp_dir: str = ""
    dashboard_url: str = ""
    gcs_address: str = ""
    token_path: str = ""
    leaders: dict[int, int] = field(default_factory=dict)
    leases: dict[str, Process] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        check_dns1123_label("cluster name", self.name)
        if not self.idle_timeout > 0:
            raise ConfigError("idle_timeout", self.idle_timeout, "must be a number of seconds > 0")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_dict`` reads it back)."""
        values = asdict(self)
        values["leaders"] = {str(pid): start for pid, start in self.leaders.items()}
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> WarmCluster:
        """The entry ``to_dict`` wrote."""
        values = dict(values)
        values["owner"] = Process(**values["owner"])
        values["leaders"] = {int(pid): int(start) for pid, start in values["leaders"].items()}
        values["leases"] = {key: Process(**proc) for key, proc in values["leases"].items()}
        return cls(**values)

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header of the cluster's Jobs API (its token is never printed)."""
        return {"Authorization": f"Bearer {Path(self.token_path).read_text().strip()}"}


class Registry:
    """The warm clusters recorded in one folder (``Settings.clusters_dir``)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    def path(self, name: str) -> Path:
        """The entry file of cluster ``name``."""
        return self.root / f"{check_dns1123_label('cluster name', name)}{_SUFFIX}"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's write lock (blocks while another process holds it)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def get(self, name: str) -> WarmCluster | None:
        """Cluster ``name``'s entry, or None."""
        return self._read(self.path(name))

    def all(self) -> list[WarmCluster]:
        """Every entry, by name."""
        if not self.root.is_dir():
            return []
        entries = (self._read(path) for path in sorted(self.root.glob(f"*{_SUFFIX}")))
        return [entry for entry in entries if entry is not None]

    def put(self, entry: WarmCluster) -> None:
        """Write ``entry`` whole (atomically); call it holding ``locked()``."""
        text = json.dumps(entry.to_dict(), indent=2, sort_keys=True) + "\n"
        _write_atomic(self.path(entry.name), text)

    def remove(self, name: str) -> None:
        """Forget cluster ``name``; call it holding ``locked()``."""
        self.path(name).unlink(missing_ok=True)

    def update(self, name: str, change: Callable[[WarmCluster], bool | None]) -> WarmCluster | None:
        """Read, ``change`` and write back one entry under the lock; None if there is none.

        ``change`` may return False to leave the entry as it was read.
        """
        with self.locked():
            entry = self.get(name)
            if entry is not None and change(entry) is not False:
                self.put(entry)
            return entry

    def sweep(self) -> None:
        """Remove temporary files of writes that crashed; call it holding ``locked()``."""
        for path in self.root.glob(f".*{_TEMP_SUFFIX}"):
            path.unlink(missing_ok=True)  # every live writer holds the lock, so these are dead

    def _read(self, path: Path) -> WarmCluster | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            return WarmCluster.from_dict(json.loads(text))
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(
                str(path), text[:80], f"must be a warm-cluster entry written by flyray ({exc})"
            ) from exc


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` so that readers and crashes see the old or the new file."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a power cut
    finally:
        os.close(folder)
