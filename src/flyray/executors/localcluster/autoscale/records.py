"""The worker nodes an autoscaled local cluster has, one JSON file each, and each group's count.

The cluster writes a record for every worker it starts itself, the node provider (in Ray's
autoscaler, on the head) for every worker it starts, and the provider removes a record once
its node is stopped: ``<temp dir>/autoscaler/nodes/<instance id>.json`` holds the node's
group, its ``ray start`` process (pid and start time: 0 while it is not launched yet), its
logs, and its state: "starting", "stopping" or "failed" (with the error). Files are replaced
atomically, so any process reads whole records: the provider, the cluster's stop, the run's
progress and ``flyray cluster list`` all see the same nodes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flyray.executors.localcluster.procs import is_running

__all__ = [
    "CONFIG_FILE",
    "FAILED",
    "STARTING",
    "STOPPING",
    "GroupCount",
    "NodeRecord",
    "alive_node_ports",
    "autoscaler_dir",
    "group_counts",
    "read_records",
    "remove_record",
    "write_record",
]

STARTING, STOPPING, FAILED = "starting", "stopping", "failed"
CONFIG_FILE = "config.json"  # Ray's autoscaling config, in autoscaler_dir()
_STARTED_MARK = b"Ray runtime started."


@dataclass
class NodeRecord:
    """One autoscaled worker: who it is, where its process and logs are, and its state."""

    instance_id: str  # the node's RAY_CLOUD_INSTANCE_ID, also its name
    group: str
    pid: int = 0
    start: int = 0
    out_log: str = ""
    err_log: str = ""
    state: str = STARTING
    error: str = ""
    launch_request: str = ""  # the autoscaler's request id (none for the cluster's own workers)
    node_manager_port: int = 0  # how the GCS's node table names it

    def alive(self) -> bool:
        """True while its `ray start` runs."""
        return self.pid > 0 and is_running(self.pid, self.start)

    def pending(self) -> bool:
        """True before its `ray start` is launched (a worker the cluster is about to start)."""
        return self.pid == 0 and self.state == STARTING

    def started(self) -> bool:
        """True once its `ray start` said it started."""
        try:
            return _STARTED_MARK in Path(self.out_log).read_bytes()
        except OSError:
            return False

    def up(self, alive_ports: set[int] | None) -> bool:
        """True while it runs, started, is not being stopped and (if known) the GCS has it alive."""
        if self.state != STARTING or not self.alive() or not self.started():
            return False
        return alive_ports is None or self.node_manager_port in alive_ports

    def wanted(self, alive_ports: set[int] | None) -> bool:
        """True while it counts towards its group's target: starting, or up and not let go.

        A node the autoscaler drained is dead in the GCS before its process is stopped.
        """
        if self.state != STARTING:
            return False
        if self.pending():
            return True
        return self.alive() and (not self.started() or self.up(alive_ports))


@dataclass(frozen=True)
class GroupCount:
    """A group's workers now (up) and the count the autoscaler works towards (target)."""

    up: int
    target: int
    min_workers: int
    max_workers: int

    def __str__(self) -> str:
        return f"{self.up}/{self.target} (min {self.min_workers}, max {self.max_workers})"


def autoscaler_dir(temp_dir: Path | str) -> Path:
    """Where an autoscaled cluster keeps its autoscaling config and node records."""
    return Path(temp_dir) / "autoscaler"


def write_record(temp_dir: Path | str, record: NodeRecord) -> None:
    """Write (or replace) a node's record atomically."""
    folder = autoscaler_dir(temp_dir) / "nodes"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.instance_id}.json"
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.write_text(json.dumps(asdict(record)))
    part.replace(path)


def remove_record(temp_dir: Path | str, instance_id: str) -> None:
    """Forget a node (it was stopped)."""
    with contextlib.suppress(FileNotFoundError):
        (autoscaler_dir(temp_dir) / "nodes" / f"{instance_id}.json").unlink()


def read_records(temp_dir: Path | str) -> list[NodeRecord]:
    """Every node record of the cluster under ``temp_dir`` (none if it does not autoscale)."""
    return list(_records(autoscaler_dir(temp_dir) / "nodes"))


def group_counts(
    temp_dir: Path | str, alive_ports: set[int] | None = None
) -> dict[str, GroupCount]:
    """{group: its workers up and its target}, for a cluster whose autoscaler config is there.

    The target counts the workers that are starting or up and not being stopped: what the
    autoscaler asked for. ``alive_ports`` (``alive_node_ports``) is the GCS's view: a worker
    is up only while the GCS has it alive. Empty for a cluster without autoscaling.
    """
    config = _config(temp_dir)
    if config is None:
        return {}
    records = read_records(temp_dir)
    counts = {}
    for name, node_type in config.get("available_node_types", {}).items():
        if name == config.get("head_node_type"):
            continue
        mine = [r for r in records if r.group == name]
        counts[name] = GroupCount(
            up=sum(r.up(alive_ports) for r in mine),
            target=sum(r.wanted(alive_ports) for r in mine),
            min_workers=int(node_type.get("min_workers", 0)),
            max_workers=int(node_type.get("max_workers", 0)),
        )
    return counts


def alive_node_ports(temp_dir: Path | str, gcs: Any = None) -> set[int] | None:
    """The node-manager ports of the nodes the cluster's GCS has alive; None if it is not up.

    ``gcs`` is a ``health.GcsNodes`` to ask again (else one is made and closed).
    """
    from flyray.executors.localcluster.health import GcsNodes
    from flyray.executors.localcluster.procs import TOKEN_FILE

    config = _config(temp_dir)
    if config is None:
        return None
    token = Path(temp_dir) / TOKEN_FILE
    client = gcs or GcsNodes(lambda: token.read_text().strip())
    try:
        return client.alive_ports(config["provider"]["gcs_address"], quiet=True)
    except OSError:
        return None
    finally:
        if gcs is None:
            client.close()


def _config(temp_dir: Path | str) -> dict[str, Any] | None:
    """The cluster's autoscaling config, or None if it has none."""
    try:
        return json.loads((autoscaler_dir(temp_dir) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None


def _records(folder: Path) -> Iterator[NodeRecord]:
    """The records in ``folder``, skipping files being written."""
    try:
        paths = sorted(folder.glob("*.json"))
    except OSError:
        return
    for path in paths:
        try:
            yield NodeRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
