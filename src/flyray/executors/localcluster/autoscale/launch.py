"""How an autoscaled cluster starts its own nodes: the head with Ray's autoscaler, the workers
as the autoscaler's instances.

The head runs ``ray start --head --autoscaling-config=<temp dir>/autoscaler/config.json`` with
``RAY_enable_autoscaler_v2=1``: its GCS then expects autoscaler v2, and `ray start` runs v2's
monitor, which loads flyray's node provider. The head and every worker say which instance they
are (``RAY_CLOUD_INSTANCE_ID``, ``RAY_NODE_TYPE_NAME``), as KubeRay's pods do; the workers the
cluster starts itself are recorded before the head starts, so that the autoscaler adopts them
instead of starting the group's minimum a second time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from flyray.executors.localcluster.autoscale.config import (
    HEAD_INSTANCE_ID,
    HEAD_NODE_TYPE,
    AutoscalingPlan,
    node_env,
)
from flyray.executors.localcluster.autoscale.records import (
    CONFIG_FILE,
    NodeRecord,
    autoscaler_dir,
    write_record,
)
from flyray.executors.localcluster.raystart import Node, NodeSpec, free_port
from flyray.manifest.labels import GROUP_LABEL

__all__ = ["UPDATE_INTERVAL_S", "launch_head", "launch_worker", "record_pending"]

UPDATE_INTERVAL_S = 1  # the autoscaler's loop (Ray's default is 5 s; its own local clusters use 1)


def record_pending(temp_dir: Path, workers: Iterable[NodeSpec]) -> None:
    """Record the workers the cluster is about to start, as not yet launched."""
    for spec in workers:
        write_record(temp_dir, NodeRecord(spec.name, spec.labels.get(GROUP_LABEL, "")))


def launch_head(
    node: Node,
    argv: list[str],
    env: Mapping[str, str],
    plan: AutoscalingPlan,
    gcs_address: str,
    temp_dir: Path,
) -> None:
    """Write the autoscaling config for this GCS address, start the head with the autoscaler."""
    folder = autoscaler_dir(temp_dir)
    folder.mkdir(parents=True, exist_ok=True)
    config = plan.config(gcs_address=gcs_address, temp_dir=temp_dir, cluster_name=temp_dir.name)
    path = folder / CONFIG_FILE
    path.write_text(json.dumps(config, indent=1))
    head_env = node_env(dict(env), HEAD_INSTANCE_ID, HEAD_NODE_TYPE)
    head_env.update(
        RAY_enable_autoscaler_v2="1",
        AUTOSCALER_UPDATE_INTERVAL_S=str(UPDATE_INTERVAL_S),
        AUTOSCALER_METRIC_PORT=str(free_port()),  # Ray's fixed 44217 would clash between clusters
    )
    head_env.update(dict(plan.env))
    node.launch([*argv, f"--autoscaling-config={path}"], head_env)


def launch_worker(node: Node, argv: list[str], env: Mapping[str, str], temp_dir: Path) -> None:
    """Start one of the cluster's first workers as the autoscaler's instance, and record it."""
    group = node.spec.labels.get(GROUP_LABEL, "")
    node.launch(argv, node_env(dict(env), node.spec.name, group))
    assert node.process is not None
    record = NodeRecord(
        node.spec.name,
        group,
        pid=node.process.pid,
        start=node.started_at,
        out_log=str(node.out_log),
        err_log=str(node.err_log),
        node_manager_port=node.ports["node_manager"],
    )
    write_record(temp_dir, record)
