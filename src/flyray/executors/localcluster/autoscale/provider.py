"""flyray's node provider for Ray's autoscaler: worker nodes as `ray start` processes here.

Ray's autoscaler (v2, in the monitor process on the head) loads this class through its
``provider.type: external`` hook and calls it to list, start and stop worker nodes. A node is
the same ``ray start --block`` that the cluster starts (``raystart.Node``): a session of its
own, a temp dir under the cluster's (``a<k>``), free ports, the cluster's auth token (the
monitor runs with the head's environment), its group's resources and labels, and
``RAY_CLOUD_INSTANCE_ID`` / ``RAY_NODE_TYPE_NAME`` so that the autoscaler matches the Ray node
to the instance it asked for. Every node is recorded (``records``) before this returns, so
the cluster's stop, its guard and reaper find it; a node that fails to start is recorded as
"failed" with the end of its log, which the run's progress shows.

Only Ray's monitor imports this module (it imports Ray).
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import time
from pathlib import Path
from threading import RLock
from typing import Any

from ray.autoscaler.node_provider import NodeProvider
from ray.autoscaler.tags import (
    NODE_KIND_HEAD,
    NODE_KIND_WORKER,
    STATUS_UP_TO_DATE,
    TAG_RAY_LAUNCH_REQUEST,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_NAME,
    TAG_RAY_NODE_STATUS,
    TAG_RAY_USER_NODE_TYPE,
)

from flyray.executors.localcluster.autoscale.config import (
    HEAD_NODE_TYPE,
    INSTANCE_ENV,
    NODE_TYPE_ENV,
    node_env,
    node_spec_from_dict,
)
from flyray.executors.localcluster.autoscale.records import (
    FAILED,
    STOPPING,
    NodeRecord,
    read_records,
    remove_record,
    write_record,
)
from flyray.executors.localcluster.procs import terminate_nodes
from flyray.executors.localcluster.raystart import plan_node

__all__ = ["FlyrayNodeProvider"]

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0  # a worker's `ray start` gets this long to say it started
STOP_TIMEOUT_S = 15.0
_POLL_S = 0.1


class FlyrayNodeProvider(NodeProvider):
    """Worker nodes of one local cluster, known by their records under its temp dir."""

    def __init__(self, provider_config: dict[str, Any], cluster_name: str) -> None:
        super().__init__(provider_config, cluster_name)
        self._temp_dir = Path(provider_config["temp_dir"])
        self._gcs_address = str(provider_config["gcs_address"])
        self._head_id = str(provider_config["head_instance_id"])
        self._lock = RLock()
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._ports: set[int] = set()
        self._numbers = itertools.count(1)
        base = dict(os.environ)
        for name in (INSTANCE_ENV, NODE_TYPE_ENV, "RAY_OVERRIDE_NODE_ID_FOR_TESTING"):
            base.pop(name, None)
        self._base_env = base

    # -- what there is ---------------------------------------------------------------------

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        """The head and every worker that is launched and running, or about to be launched."""
        with self._lock:
            self._reap()
            ids = [self._head_id] + [r.instance_id for r in self._live()]
            wanted = tag_filters.items()
            return [i for i in ids if all(self.node_tags(i).get(k) == v for k, v in wanted)]

    def is_running(self, node_id: str) -> bool:
        """True for the head and a worker whose `ray start` runs."""
        if node_id == self._head_id:
            return True
        record = self._record(node_id)
        return record is not None and record.alive()

    def is_terminated(self, node_id: str) -> bool:
        """True for a worker that is neither running nor about to be launched."""
        return node_id not in self.non_terminated_nodes({})

    def node_tags(self, node_id: str) -> dict[str, str]:
        """The tags Ray's autoscaler reads: kind, node type, name, status, launch request."""
        if node_id == self._head_id:
            return {
                TAG_RAY_NODE_KIND: NODE_KIND_HEAD,
                TAG_RAY_USER_NODE_TYPE: HEAD_NODE_TYPE,
                TAG_RAY_NODE_NAME: node_id,
                TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
            }
        record = self._record(node_id)
        tags = {
            TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
            TAG_RAY_USER_NODE_TYPE: record.group if record else "",
            TAG_RAY_NODE_NAME: node_id,
            TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
        }
        if record is not None and record.launch_request:
            tags[TAG_RAY_LAUNCH_REQUEST] = record.launch_request
        return tags

    def internal_ip(self, node_id: str) -> str:
        """Nodes share this machine's address: the autoscaler knows them by instance id."""
        return node_id

    def external_ip(self, node_id: str) -> str:
        return node_id

    def set_node_tags(self, node_id: str, tags: dict[str, str]) -> None:
        """Tags are fixed at launch (the autoscaler v2 does not change them)."""

    # -- start -----------------------------------------------------------------------------

    def create_node(
        self, node_config: dict[str, Any], tags: dict[str, str], count: int
    ) -> dict[str, Any]:
        """Start ``count`` workers of the node type in ``tags`` (see the method below)."""
        self.create_node_with_resources_and_labels(node_config, tags, count, {}, {})
        return {}

    def create_node_with_resources_and_labels(
        self,
        node_config: dict[str, Any],
        tags: dict[str, str],
        count: int,
        resources: dict[str, float],
        labels: dict[str, str],
    ) -> dict[str, Any]:
        """Start ``count`` workers at once; return when each has started, raise if one failed.

        Their resources and labels are the group's (``node_config["flyray_node"]``), which
        are also the ``resources`` and ``labels`` given here: the same autoscaling config.
        """
        group = tags[TAG_RAY_USER_NODE_TYPE]
        request = tags.get(TAG_RAY_LAUNCH_REQUEST, "")
        started = [self._launch(node_config["flyray_node"], group, request) for _ in range(count)]
        failures = [error for error in (self._wait_started(*each) for each in started) if error]
        if failures:
            raise RuntimeError("; ".join(failures))
        return {}

    def _launch(self, template: dict[str, Any], group: str, request: str) -> tuple[Any, str]:
        """Launch one worker of ``group`` and record it; (its Node, its instance id)."""
        number = next(self._numbers)
        instance_id = f"{group}-a{number}"
        spec = node_spec_from_dict(template, name=instance_id)
        with self._lock:
            node = plan_node(
                spec, self._temp_dir / f"a{number}", self._temp_dir / "logs", self._ports
            )
        record = NodeRecord(
            instance_id,
            group,
            out_log=str(node.out_log),
            err_log=str(node.err_log),
            launch_request=request,
            node_manager_port=node.ports["node_manager"],
        )
        argv = node.argv(gcs_address=self._gcs_address, dashboard=False)
        log.info("starting worker %s of group %s", instance_id, group)
        node.launch(argv, node_env(self._base_env, instance_id, group))
        assert node.process is not None
        record.pid, record.start = node.process.pid, node.started_at
        with self._lock:
            self._children[instance_id] = node.process
        write_record(self._temp_dir, record)
        return node, instance_id

    def _wait_started(self, node: Any, instance_id: str) -> str:
        """Wait until a launched worker started (""), or say why it did not (and record it)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not node.started():
            code = node.process.poll()
            if code is not None or time.monotonic() > deadline:
                what = f"exited with code {code}" if code is not None else "did not start in time"
                return self._failed(node, instance_id, what)
            time.sleep(_POLL_S)
        return ""

    def _failed(self, node: Any, instance_id: str, what: str) -> str:
        """Record a worker that failed to start (its process stopped) and say why."""
        if node.process.poll() is None:
            leader = {node.process.pid: node.started_at}
            terminate_nodes(leader, timeout=5.0, children=[node.process])
        tail = node.log_tail().strip().splitlines()
        said = tail[-1] if tail else ""
        error = f"`ray start` {what}{': ' + said if said else ''} (see {node.err_log})"
        record = self._record(instance_id)
        if record is not None:
            record.state, record.error = FAILED, error
            write_record(self._temp_dir, record)
        log.error("worker %s failed to start: %s", instance_id, error)
        return f"worker {instance_id} failed to start: {error}"

    # -- stop ------------------------------------------------------------------------------

    def terminate_node(self, node_id: str) -> dict[str, Any]:
        """Stop one worker."""
        return self.terminate_nodes([node_id])

    def terminate_nodes(self, node_ids: list[str]) -> dict[str, Any]:
        """Stop workers together (SIGTERM to each `ray start`, KILL of its group if needed)."""
        records = [r for r in map(self._record, node_ids) if r is not None]
        for record in records:
            record.state = STOPPING
            write_record(self._temp_dir, record)
        with self._lock:
            children = [c for r in records if (c := self._children.get(r.instance_id))]
        leaders = {r.pid: r.start for r in records if r.pid > 0}
        log.info("stopping workers %s", [r.instance_id for r in records])
        terminate_nodes(leaders, timeout=STOP_TIMEOUT_S, children=children)
        for record in records:
            remove_record(self._temp_dir, record.instance_id)
            with self._lock:
                self._children.pop(record.instance_id, None)
        return {}

    # -- records ---------------------------------------------------------------------------

    def _live(self) -> list[NodeRecord]:
        """Workers that run (or are about to be launched by the cluster) and are not failed."""
        records = read_records(self._temp_dir)
        return [r for r in records if r.state != FAILED and (r.pending() or r.alive())]

    def _record(self, node_id: str) -> NodeRecord | None:
        return next((r for r in read_records(self._temp_dir) if r.instance_id == node_id), None)

    def _reap(self) -> None:
        """Collect the exit status of this process's workers that exited (no zombies)."""
        for process in self._children.values():
            process.poll()
