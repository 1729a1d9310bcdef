"""A Ray task's ``RayJobRequest``: its ``RayJobConfig`` and environment, translated once.

Head and worker groups get their ``rayStartParams`` and pod templates here (resources on the
Ray container, a GPU type as node affinity and as Ray's ``accelerator_type`` resource), the
replica bounds as written, and the task's names, secrets and bounds; the renderers in
``flyray.manifest`` read nothing else.
"""

from __future__ import annotations

import copy
import inspect
import math
from pathlib import Path
from typing import Any

from flyray.config.resources import Resources
from flyray.errors import ManifestError
from flyray.manifest.images import container_image
from flyray.manifest.pod import ray_pod_template
from flyray.manifest.request import (
    Autoscaler,
    NodeGroup,
    RayClusterSpec,
    RayJobRequest,
    WorkerGroup,
)
from flyray.plugins.ray.config import (
    KUBERAY_MAX_REPLICAS,
    KUBERAY_MIN_REPLICAS,
    AutoscalerOptionsConfig,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)
from flyray.plugins.ray.resources import (
    accelerator_resources,
    head_resources,
    node_label_settings,
    with_accelerator_resources,
)
from flyray.task.base import FunctionTask

__all__ = ["ray_request"]


def ray_request(task: FunctionTask) -> RayJobRequest:
    """The request of a task whose environment declares a ``RayJobConfig``.

    Any other task has no cluster to describe: ManifestError, naming what to add.
    """
    config = task.plugin_config
    if not isinstance(config, RayJobConfig):
        raise ManifestError(
            f"task {task.name!r} is not a Ray task, so it has no RayJob: give its environment "
            f"{task.env.name!r} plugin_config=RayJobConfig(...) to run it on KubeRay"
        )
    config.validate()
    cluster = RayClusterSpec(
        head=_head_group(task, config),
        workers=tuple(_worker_group(task, config, worker) for worker in config.worker_node_config),
        enable_autoscaling=config.enable_autoscaling,
        autoscaler=_autoscaler(config.autoscaler_options),
    )
    return RayJobRequest(
        task_name=task.name,
        env_name=task.env.name,
        short_name=task.short_name,
        cluster=cluster,
        runtime_env=copy.deepcopy(config.runtime_env or {}),
        env_vars=dict(task.env.env_vars or {}),
        image=task.env.image,
        task_file=_task_file(task),
        secrets=tuple(task.env.secrets),
        resources=task.env.resources,
        service_account=task.service_account,
        retries=task.retries,
        timeout=task.timeout,
        shutdown_after_job_finishes=config.shutdown_after_job_finishes,
        ttl_seconds_after_finished=config.ttl_seconds_after_finished,
        pre_running_deadline_seconds=_pre_running_deadline(task, config),
        address=config.address,
    )


def _head_group(task: FunctionTask, config: RayJobConfig) -> NodeGroup:
    head = config.head_node_config  # never None once validate() ran
    requests, limits = head_resources(head, task.env.resources)
    where = (
        "HeadNodeConfig"
        if (requests, limits) == (head.requests, head.limits)
        else "TaskEnvironment.resources"
    )
    params, template = _node(task, "ray-head", head, requests, limits, where)
    return NodeGroup(ray_start_params=params, template=template)


def _worker_group(
    task: FunctionTask, config: RayJobConfig, worker: WorkerNodeConfig
) -> WorkerGroup:
    where = f"WorkerNodeConfig(group_name={worker.group_name!r})"
    min_replicas = _bound(config, worker.min_replicas, worker.replicas, KUBERAY_MIN_REPLICAS)
    max_replicas = _bound(config, worker.max_replicas, worker.replicas, KUBERAY_MAX_REPLICAS)
    params, template = _node(task, "ray-worker", worker, worker.requests, worker.limits, where)
    return WorkerGroup(
        name=worker.group_name,
        replicas=worker.replicas,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        ray_start_params=params,
        template=template,
    )


def _bound(config: RayJobConfig, value: int | None, replicas: int, kuberay_default: int) -> int:
    """A written bound: the given one, else ``replicas`` (fixed size) or KubeRay's default
    under autoscaling."""
    if value is not None:
        return value
    return kuberay_default if config.enable_autoscaling else replicas


def _node(
    task: FunctionTask,
    container_name: str,
    node: HeadNodeConfig | WorkerNodeConfig,
    requests: Resources | None,
    limits: Resources | None,
    where: str,
) -> tuple[dict[str, str], dict[str, Any]]:
    """A group's ``rayStartParams`` and pod template: the node's resources on the Ray
    container, its GPU type as node affinity and as Ray's ``accelerator_type`` resource, and
    the task's service account."""
    template = ray_pod_template(
        container_name=container_name,
        requests=requests,
        limits=limits,
        pod_template=node.pod_template or task.effective_pod_template,
        image=container_image(task.env.image),
        where=where,
        **node_label_settings(requests, limits),
    )
    if task.service_account:
        template["spec"].setdefault("serviceAccountName", task.service_account)
    params = with_accelerator_resources(
        node.ray_start_params, accelerator_resources(requests, limits), where=where
    )
    return dict(sorted(params.items())), template


def _autoscaler(options: AutoscalerOptionsConfig | None) -> Autoscaler | None:
    if options is None:
        return None
    return Autoscaler(
        upscaling_mode=options.kuberay_upscaling_mode,
        idle_timeout_seconds=options.idle_timeout_seconds,
        image=options.image,
        env=dict(options.env or {}),
        resources=options.resources,
        version=options.version,
    )


def _pre_running_deadline(task: FunctionTask, config: RayJobConfig) -> int | None:
    """The config's deadline, else Flyte's ``Timeout(max_queued_time=...)`` rounded up."""
    if config.pre_running_deadline_seconds is not None:
        return config.pre_running_deadline_seconds
    if task.max_queued_time is not None:
        return math.ceil(task.max_queued_time)
    return None


def _task_file(task: FunctionTask) -> Path | None:
    """The file that defines the task: its project is what the code bundle ships."""
    try:
        return Path(inspect.getfile(task.func))
    except TypeError:  # a builtin or a callable without a source file
        return None
