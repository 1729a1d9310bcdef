"""Ray's ``accelerator_type:<TYPE>`` resources for the GPU types a Ray cluster's nodes name.

``@ray.remote(accelerator_type="T4")`` asks for a sliver of the custom resource
``accelerator_type:T4``. Ray adds that resource itself on a node where it detects a T4; flyray
declares it for every node whose requests/limits name a GPU type, so the decorator schedules
in every mode: in KubeRay and local-cluster nodes through ``rayStartParams["resources"]``, in
local mode through ``ray.init(resources=local_ray_resources(config))``.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from flyray.config.accelerators import ray_accelerator_types
from flyray.config.resources import Resources
from flyray.errors import ConfigError
from flyray.manifest.pod import node_device
from flyray.plugins.ray.config import HeadNodeConfig, RayJobConfig

__all__ = [
    "ACCELERATOR_TYPE_PREFIX",
    "accelerator_resources",
    "head_resources",
    "local_ray_resources",
    "node_label_settings",
    "with_accelerator_resources",
]

ACCELERATOR_TYPE_PREFIX = "accelerator_type:"  # Ray's prefix (ray_constants)


def accelerator_resources(requests: Resources | None, limits: Resources | None) -> dict[str, float]:
    """``{"accelerator_type:T4": 1}`` for a node whose requests or limits name a T4."""
    device = node_device(requests, limits)
    names = () if device is None else ray_accelerator_types(device)
    return {f"{ACCELERATOR_TYPE_PREFIX}{name}": 1 for name in names}


def node_label_settings(requests: Resources | None, limits: Resources | None) -> dict[str, str]:
    """``device_label``/``partition_label`` for ``ray_pod_template``, from flyray's settings.

    Settings are read only for a node that names a GPU type, so rendering any other node does
    no I/O.
    """
    device = node_device(requests, limits)
    if device is None or device.device is None:
        return {}
    from flyray.config.settings import Settings

    settings = Settings.load()
    return {
        "device_label": settings.accelerator_label,
        "partition_label": settings.accelerator_partition_label,
    }


def head_resources(
    head: HeadNodeConfig, env_resources: Resources | None
) -> tuple[Resources | None, Resources | None]:
    """The head's (requests, limits): its own, else the environment's resources.

    The environment's resources size the head only when the head names no resources and no
    pod template (which would size the container itself).
    """
    if head.requests is None and head.limits is None and head.pod_template is None:
        return env_resources, None
    return head.requests, head.limits


def with_accelerator_resources(
    params: dict[str, str], resources: dict[str, float], *, where: str
) -> dict[str, str]:
    """``rayStartParams`` with ``resources`` merged into its ``resources`` JSON object.

    The user's keys win; the result is single-quoted, as KubeRay writes it, since KubeRay
    pastes the value into a bash line. Without accelerator resources, ``params`` is returned
    unchanged.
    """
    if not resources:
        return params
    merged = {**resources, **_user_resources(params.get("resources", ""), where=where)}
    text = json.dumps(merged, sort_keys=True, separators=(", ", ": "))
    return {**params, "resources": shlex.quote(text)}


def local_ray_resources(
    config: RayJobConfig, env_resources: Resources | None = None
) -> dict[str, float]:
    """The accelerator_type resources of every node of ``config``, for a local ``ray.init``.

    ``env_resources`` is the task environment's ``resources``, which size the head when the
    head names none. Pass the result as ``ray.init(resources=...)``.
    """
    head = config.head_node_config or HeadNodeConfig()
    out = accelerator_resources(*head_resources(head, env_resources))
    for worker in config.worker_node_config:
        out.update(accelerator_resources(worker.requests, worker.limits))
    return dict(sorted(out.items()))


def _user_resources(text: str, *, where: str) -> dict[str, Any]:
    """The user's ``resources`` param as a dict: JSON, possibly shell-quoted as for KubeRay."""
    text = text.strip()
    if not text:
        return {}
    try:
        words = shlex.split(text) if text[0] in "'\"" else [text]
        value = json.loads(words[0]) if len(words) == 1 else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}.ray_start_params['resources']",
            text,
            "must be a JSON object (optionally single-quoted), e.g. '{\"custom\": 1}', so the "
            "GPU type's accelerator_type resource can join it",
        )
    return value
