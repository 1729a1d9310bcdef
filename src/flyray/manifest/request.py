"""``RayJobRequest``: what a Ray task asks of a cluster, computed once, read by every renderer.

The Ray plugin builds it from a task and its ``RayJobConfig`` (``plugins.ray.request``);
``custom_config()``, the RayJob, the reusable RayCluster and the batch Job of a task on an
existing cluster are all rendered from it, so none of them reads the Python config again.
Frozen: no field is reassigned; a renderer copies the mappings it changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyray.config.image import Image
from flyray.config.resources import Resources
from flyray.config.secrets import Secret

__all__ = ["Autoscaler", "NodeGroup", "RayClusterSpec", "RayJobRequest", "WorkerGroup"]


@dataclass(frozen=True)
class NodeGroup:
    """Ray nodes alike: their ``ray start`` parameters and the pod template of each."""

    ray_start_params: dict[str, str]  # str values, sorted by key
    template: dict[str, Any]  # a PodTemplateSpec whose first container is the Ray container


@dataclass(frozen=True)
class WorkerGroup(NodeGroup):
    """A worker group: a node group with a name and replica bounds (written, never None)."""

    name: str
    replicas: int
    min_replicas: int
    max_replicas: int


@dataclass(frozen=True)
class Autoscaler:
    """Options of the in-tree autoscaler; None is the operator's default."""

    upscaling_mode: str | None  # "Default", "Aggressive" or "Conservative"
    idle_timeout_seconds: int | None
    image: str | None
    env: dict[str, str]
    resources: Resources | None
    version: str | None  # "v1" or "v2"


@dataclass(frozen=True)
class RayClusterSpec:
    """The cluster: a head group, worker groups and autoscaling."""

    head: NodeGroup
    workers: tuple[WorkerGroup, ...]
    enable_autoscaling: bool
    autoscaler: Autoscaler | None


@dataclass(frozen=True)
class RayJobRequest:
    """A Ray task's cluster, runtime env, names, secrets and run bounds.

    ``address`` set: the task uses that existing cluster and gets no cluster of its own (a
    batch Job connects to it in kuberay mode). ``runtime_env`` and ``env_vars`` are the
    config's and the environment's; a renderer merges them with the run's own.
    """

    task_name: str  # <env>.<function>
    env_name: str
    short_name: str
    cluster: RayClusterSpec
    runtime_env: dict[str, Any]
    env_vars: dict[str, str]
    image: str | Image | None  # the environment's image
    task_file: Path | None  # the file that defines the task: its project is the code bundle
    secrets: tuple[Secret, ...]
    resources: Resources | None  # the environment's: the batch Job's pod
    service_account: str | None  # the batch Job's pod (Ray pods carry it in their templates)
    retries: int
    timeout: float | None  # seconds, over every attempt
    shutdown_after_job_finishes: bool
    ttl_seconds_after_finished: int | None
    pre_running_deadline_seconds: int | None
    address: str | None
