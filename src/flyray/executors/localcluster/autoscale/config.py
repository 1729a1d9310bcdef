"""A RayJob's ``rayClusterSpec`` as the autoscaling config of Ray's autoscaler, as KubeRay maps it.

KubeRay's autoscaler reads the RayCluster and derives its config with Ray's
``_derive_autoscaling_config_from_ray_cr`` (in ``ray/autoscaler/_private/kuberay/``,
``autoscaling_config.py``); this module does the same for a local cluster, field by field:

- every worker group is a node type: ``minReplicas``/``maxReplicas`` (times ``numOfHosts``) ->
  ``min_workers``/``max_workers``, a group's ``idleTimeoutSeconds`` -> ``idle_timeout_s``; the
  head is ``headgroup`` with no workers of its own;
- a node type's resources are what its nodes advertise, taken the way ``topology`` starts them
  (``num-cpus``/``num-gpus``/``memory``/``resources`` rayStartParams, else the Ray container's
  limits and requests), plus the group's own custom resource and label;
- ``autoscalerOptions.idleTimeoutSeconds`` -> ``idle_timeout_minutes`` (default 1 minute),
  ``upscalingMode`` Conservative -> ``upscaling_speed`` 1, Default/Aggressive (or none) -> 1000.

Where KubeRay's autoscaler refuses a group without CPUs, a local group without them gets this
machine's CPU count, written on its nodes, so that what the autoscaler plans is what they have.
The ``provider`` section points Ray at flyray's node provider (``provider.type: external``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flyray.errors import ManifestError
from flyray.executors.localcluster.raystart import NodeSpec

__all__ = [
    "HEAD_INSTANCE_ID",
    "HEAD_NODE_TYPE",
    "INSTANCE_ENV",
    "NODE_TYPE_ENV",
    "PROVIDER_MODULE",
    "AutoscalingPlan",
    "GroupPlan",
    "autoscaling_enabled",
    "autoscaling_plan",
    "node_env",
    "node_resources",
    "node_spec_dict",
    "node_spec_from_dict",
]

INSTANCE_ENV = "RAY_CLOUD_INSTANCE_ID"  # the instance a Ray node runs on, for autoscaler v2
NODE_TYPE_ENV = "RAY_NODE_TYPE_NAME"
HEAD_NODE_TYPE = "headgroup"  # KubeRay's name for the head's node type
HEAD_INSTANCE_ID = "head"  # the head's RAY_CLOUD_INSTANCE_ID: how the autoscaler knows it
PROVIDER_MODULE = "flyray.executors.localcluster.autoscale.provider.FlyrayNodeProvider"
DEFAULT_IDLE_TIMEOUT_S = 60.0  # KubeRay's default: idle_timeout_minutes 1.0
_UPSCALING_SPEED = {"Conservative": 1, "Default": 1000, "Aggressive": 1000}
_DEFAULT_UPSCALING_SPEED = 1000


@dataclass(frozen=True)
class GroupPlan:
    """One worker group: the node its workers are (``template``), its bounds and first count."""

    name: str
    template: NodeSpec
    min_workers: int
    max_workers: int
    replicas: int  # started with the cluster: replicas clamped to [min, max]
    idle_timeout_s: float | None = None

    def node_type(self) -> dict[str, Any]:
        """This group as an ``available_node_types`` entry of Ray's autoscaling config."""
        entry: dict[str, Any] = {
            "min_workers": self.min_workers,
            "max_workers": self.max_workers,
            "node_config": {"flyray_node": node_spec_dict(self.template)},
            "resources": node_resources(self.template),
            "labels": dict(self.template.labels),
        }
        if self.idle_timeout_s is not None:
            entry["idle_timeout_s"] = self.idle_timeout_s
        return entry


@dataclass(frozen=True)
class AutoscalingPlan:
    """What Ray's autoscaler gets for a cluster: its head, groups, idle timeout and speed."""

    head: NodeSpec
    groups: tuple[GroupPlan, ...]
    idle_timeout_s: float
    upscaling_speed: int
    env: tuple[tuple[str, str], ...] = ()  # autoscalerOptions.env: set on the head node

    def config(self, *, gcs_address: str, temp_dir: Path, cluster_name: str) -> dict[str, Any]:
        """The autoscaling config file of a cluster whose GCS and temp dir are these."""
        types = {HEAD_NODE_TYPE: _head_type(self.head)}
        types.update({group.name: group.node_type() for group in self.groups})
        return {
            "cluster_name": cluster_name,
            "provider": {
                "type": "external",
                "module": PROVIDER_MODULE,
                "disable_node_updaters": True,  # nodes start themselves: nothing to ssh into
                "disable_launch_config_check": True,
                "worker_liveness_check": False,
                "gcs_address": gcs_address,
                "temp_dir": str(temp_dir),
                "head_instance_id": HEAD_INSTANCE_ID,
            },
            "head_node_type": HEAD_NODE_TYPE,
            "available_node_types": types,
            "max_workers": sum(group.max_workers for group in self.groups),
            "idle_timeout_minutes": self.idle_timeout_s / 60.0,
            "upscaling_speed": self.upscaling_speed,
            # What KubeRay also writes: fields of Ray's cluster launcher that the schema needs.
            "file_mounts": {},
            "cluster_synced_files": [],
            "file_mounts_sync_continuously": False,
            "initialization_commands": [],
            "setup_commands": [],
            "head_setup_commands": [],
            "worker_setup_commands": [],
            "head_start_ray_commands": [],
            "worker_start_ray_commands": [],
            "auth": {},
        }


def autoscaling_enabled(manifest: Mapping[str, Any]) -> bool:
    """True when the RayJob's cluster asks for KubeRay's in-tree autoscaler."""
    cluster = (manifest.get("spec") or {}).get("rayClusterSpec") or {}
    return bool(cluster.get("enableInTreeAutoscaling"))


def autoscaling_plan(manifest: Mapping[str, Any]) -> AutoscalingPlan:
    """The autoscaling plan of a RayJob whose cluster has ``enableInTreeAutoscaling: true``."""
    from flyray.executors.localcluster.topology import group_node, head_node

    cluster = manifest["spec"]["rayClusterSpec"]
    options = cluster.get("autoscalerOptions") or {}
    groups = []
    for index, group in enumerate(cluster.get("workerGroupSpecs") or []):
        name = group.get("groupName") or ""
        where = f"workerGroupSpecs[{index}] ({name!r})"
        hosts = int(group.get("numOfHosts") or 1)
        low, high = _bound(where, group, "minReplicas", 0), _bound(where, group, "maxReplicas", 0)
        if low > high:
            raise ManifestError(f"{where}: minReplicas {low} is above maxReplicas {high}")
        replicas = min(max(int(group.get("replicas") or 0), low), high)
        idle = group.get("idleTimeoutSeconds")
        groups.append(
            GroupPlan(
                name=name,
                template=_with_cpus(group_node(name, group)),
                min_workers=low * hosts,
                max_workers=high * hosts,
                replicas=replicas * hosts,
                idle_timeout_s=None if idle is None else float(idle),
            )
        )
    idle = options.get("idleTimeoutSeconds")
    mode = options.get("upscalingMode")
    env = tuple(
        (str(item["name"]), str(item.get("value", "")))
        for item in options.get("env") or []
        if isinstance(item, Mapping) and item.get("name")
    )
    return AutoscalingPlan(
        head=head_node(cluster),
        groups=tuple(groups),
        idle_timeout_s=DEFAULT_IDLE_TIMEOUT_S if idle is None else float(idle),
        upscaling_speed=_UPSCALING_SPEED.get(str(mode), _DEFAULT_UPSCALING_SPEED),
        env=env,
    )


def node_env(base: Mapping[str, str], instance_id: str, node_type: str) -> dict[str, str]:
    """A node's environment: ``base`` plus what tells the autoscaler which instance it is."""
    return {**base, INSTANCE_ENV: instance_id, NODE_TYPE_ENV: node_type}


def node_spec_dict(spec: NodeSpec) -> dict[str, Any]:
    """A NodeSpec as JSON (``node_spec_from_dict`` reads it back in the node provider)."""
    return {
        "name": spec.name,
        "num_cpus": spec.num_cpus,
        "num_gpus": spec.num_gpus,
        "memory": spec.memory,
        "resources": dict(spec.resources),
        "labels": dict(spec.labels),
        "params": dict(spec.params),
    }


def node_spec_from_dict(values: Mapping[str, Any], *, name: str) -> NodeSpec:
    """The worker NodeSpec ``node_spec_dict`` wrote, named ``name``."""
    return NodeSpec(
        name=name,
        num_cpus=values.get("num_cpus"),
        num_gpus=values.get("num_gpus"),
        memory=values.get("memory"),
        resources=dict(values.get("resources") or {}),
        labels=dict(values.get("labels") or {}),
        params=dict(values.get("params") or {}),
    )


def node_resources(spec: NodeSpec) -> dict[str, float]:
    """The Ray resources a node of ``spec`` advertises, as the autoscaler counts them."""
    resources: dict[str, float] = {}
    if spec.num_cpus is not None:
        resources["CPU"] = int(spec.num_cpus)
    if spec.num_gpus:
        resources["GPU"] = int(spec.num_gpus)
    if spec.memory is not None:
        resources["memory"] = int(spec.memory)
    resources.update(spec.resources)
    return resources


def _head_type(head: NodeSpec) -> dict[str, Any]:
    """The head's node type: its resources; the autoscaler never starts one."""
    return {
        "min_workers": 0,
        "max_workers": 0,
        "node_config": {},
        "resources": node_resources(head),
        "labels": dict(head.labels),
    }


def _with_cpus(spec: NodeSpec) -> NodeSpec:
    """``spec`` with its CPUs written out: this machine's count when nothing declares them."""
    return spec if spec.num_cpus is not None else replace(spec, num_cpus=os.cpu_count() or 1)


def _bound(where: str, group: Mapping[str, Any], field: str, default: int) -> int:
    """A group's min or max replicas: an integer >= 0 (the config layer wrote both)."""
    value = group.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError(f"{where}: {field} must be an integer >= 0; got {value!r}")
    return value
