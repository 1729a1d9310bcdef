"""KubeRay's dialect: a ``RayJobRequest`` in the operator's terms, per operator version.

``kuberay_config`` is the cluster and its job-level fields as KubeRay spells them (what
``RayFunctionTask.custom_config()`` returns); ``render_rayjob`` starts from the same
``ray_cluster_spec``. The ``*_fields`` functions write a field only for an operator that reads
it, and refuse what an older operator would silently drop.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

from flyray.config.settings import DEFAULT_KUBERAY_VERSION
from flyray.errors import ConfigError, ManifestError
from flyray.manifest.pod import resource_requirements
from flyray.manifest.request import (
    Autoscaler,
    NodeGroup,
    RayClusterSpec,
    RayJobRequest,
    WorkerGroup,
)

__all__ = [
    "API_VERSION",
    "LATEST_KUBERAY_VERSION",
    "auth_fields",
    "deadline_fields",
    "encode_runtime_env",
    "ensure_dashboard_port",
    "kuberay_config",
    "pre_running_fields",
    "ray_cluster_spec",
    "ray_container",
    "retry_fields",
    "runtime_env_fields",
    "runtime_env_yaml",
    "target_version",
]

LATEST_KUBERAY_VERSION = DEFAULT_KUBERAY_VERSION
API_VERSION = "ray.io/v1"
DASHBOARD_PORT = 8265

# The first KubeRay release that reads each field; older operators drop them silently.
_SINCE_RAY_IO_V1 = (1, 0, 0)
_SINCE_RUNTIME_ENV_YAML = (1, 1, 0)  # and the base64 ``runtimeEnv`` is gone from then on
_SINCE_ACTIVE_DEADLINE = (1, 1, 0)
_SINCE_BACKOFF_LIMIT = (1, 2, 0)
_SINCE_PRE_RUNNING_DEADLINE = (1, 6, 0)
_SINCE_AUTH_OPTIONS = (1, 6, 0)  # rayClusterSpec.authOptions: Ray token authentication
_RAY_TOKEN_AUTH = (2, 52, 0)  # the first Ray with token authentication (KubeRay checks it)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+.].*)?$")


# --- the cluster ------------------------------------------------------------------------


def kuberay_config(request: RayJobRequest) -> dict[str, Any]:
    """The cluster in KubeRay's terms: a ``rayClusterSpec`` plus the job-level fields.

    Deterministic and JSON-serialisable. The runtime env appears twice: base64 JSON
    (``runtimeEnv``, KubeRay < 1.1.0) and YAML (``runtimeEnvYAML``, KubeRay >= 1.1.0).
    """
    config: dict[str, Any] = {
        "rayClusterSpec": ray_cluster_spec(request.cluster),
        "shutdownAfterJobFinishes": request.shutdown_after_job_finishes,
    }
    if request.ttl_seconds_after_finished is not None:
        config["ttlSecondsAfterFinished"] = request.ttl_seconds_after_finished
    if request.pre_running_deadline_seconds is not None:
        config["preRunningDeadlineSeconds"] = request.pre_running_deadline_seconds
    if request.runtime_env:
        config["runtimeEnv"] = encode_runtime_env(request.runtime_env)
        config["runtimeEnvYAML"] = runtime_env_yaml(request.runtime_env)
    return config


def ray_cluster_spec(cluster: RayClusterSpec) -> dict[str, Any]:
    """``rayClusterSpec`` without image or Ray version; it shares the request's templates."""
    spec: dict[str, Any] = {
        "enableInTreeAutoscaling": cluster.enable_autoscaling,
        "headGroupSpec": _node_group(cluster.head),
        "workerGroupSpecs": [_worker_group(worker) for worker in cluster.workers],
    }
    if cluster.autoscaler is not None:
        spec["autoscalerOptions"] = _autoscaler_options(cluster.autoscaler)
    return spec


def _node_group(group: NodeGroup) -> dict[str, Any]:
    return {"rayStartParams": group.ray_start_params, "template": group.template}


def _worker_group(worker: WorkerGroup) -> dict[str, Any]:
    return {
        "groupName": worker.name,
        "replicas": worker.replicas,
        "minReplicas": worker.min_replicas,
        "maxReplicas": worker.max_replicas,
        **_node_group(worker),
    }


def _autoscaler_options(options: Autoscaler) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if options.upscaling_mode is not None:
        out["upscalingMode"] = options.upscaling_mode
    if options.idle_timeout_seconds is not None:
        out["idleTimeoutSeconds"] = options.idle_timeout_seconds
    if options.image is not None:
        out["image"] = options.image
    if options.resources is not None:
        out["resources"] = resource_requirements(options.resources, None)
    if options.env:
        out["env"] = [{"name": k, "value": v} for k, v in sorted(options.env.items())]
    if options.version is not None:
        out["version"] = options.version
    return out


def ray_container(group: dict[str, Any]) -> dict[str, Any]:
    """KubeRay finds the Ray container by index: it is always ``containers[0]``."""
    return group["template"]["spec"]["containers"][0]


def ensure_dashboard_port(head: dict[str, Any]) -> None:
    """A head that lists ports needs one named ``dashboard``, or the job is never submitted."""
    container = ray_container(head)
    ports = container.get("ports")
    if not ports or any(port.get("name") == "dashboard" for port in ports):
        return
    number = _dashboard_port_number(head)
    same = next((port for port in ports if port.get("containerPort") == number), None)
    if same is None:
        ports.append({"containerPort": number, "name": "dashboard"})
    elif same.get("name") is None:
        same["name"] = "dashboard"
    else:
        raise ManifestError(
            f"head container {container['name']!r} lists port {number} named "
            f"{same['name']!r}; KubeRay finds the Ray dashboard by the port name 'dashboard': "
            "rename that port to 'dashboard' or leave ports out of the head's pod template"
        )


def _dashboard_port_number(head: dict[str, Any]) -> int:
    value = head.get("rayStartParams", {}).get("dashboard-port", DASHBOARD_PORT)
    try:
        return int(value)
    except ValueError:
        raise ManifestError(
            f"head rayStartParams['dashboard-port'] is {value!r}; it must be a port number"
        ) from None


# --- fields per operator version --------------------------------------------------------


def target_version(kuberay_version: str) -> tuple[int, ...]:
    """``"1.10.0"`` -> ``(1, 10, 0)``, so versions compare as numbers, not as text."""
    match = _VERSION.match(kuberay_version) if isinstance(kuberay_version, str) else None
    if match is None:
        raise ConfigError("kuberay_version", kuberay_version, "must be a version such as '1.7.0'")
    version = tuple(int(part or 0) for part in match.groups())
    if version < _SINCE_RAY_IO_V1:
        raise ManifestError(
            f"KubeRay {kuberay_version} does not serve ray.io/v1 RayJobs (added in 1.0.0): "
            "upgrade the operator"
        )
    return version


def auth_fields(version: tuple[int, ...], ray_version: str) -> dict[str, Any]:
    """Ray token authentication, where KubeRay and Ray both have it.

    KubeRay then makes a Secret with a random token (named after the RayCluster, key
    ``auth_token``) and gives ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` to every Ray
    container and the submitter, and uses the token itself. Without it, ``ray start`` in a pod
    leaves the cluster open to anyone who reaches its ports, whatever Ray's default elsewhere.
    """
    ray = _VERSION.match(ray_version)
    if version < _SINCE_AUTH_OPTIONS or ray is None:
        return {}
    if tuple(int(part or 0) for part in ray.groups()) < _RAY_TOKEN_AUTH:
        return {}
    return {"authOptions": {"mode": "token"}}


def runtime_env_fields(env: dict[str, Any], version: tuple[int, ...]) -> dict[str, str]:
    """``runtimeEnvYAML`` (KubeRay >= 1.1.0) or the older base64 JSON ``runtimeEnv``."""
    if not env:
        return {}
    if version >= _SINCE_RUNTIME_ENV_YAML:
        return {"runtimeEnvYAML": runtime_env_yaml(env)}
    return {"runtimeEnv": encode_runtime_env(env)}


def encode_runtime_env(runtime_env: dict[str, Any]) -> str:
    """The runtime env as base64 JSON, the field KubeRay read before 1.1.0."""
    text = json.dumps(runtime_env, sort_keys=True, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


def runtime_env_yaml(runtime_env: dict[str, Any]) -> str:
    """The runtime env as YAML, the ``runtimeEnvYAML`` field of KubeRay >= 1.1.0."""
    import yaml

    return yaml.safe_dump(runtime_env, sort_keys=True, default_flow_style=False, allow_unicode=True)


def deadline_fields(
    request: RayJobRequest, version: tuple[int, ...], kuberay_version: str
) -> dict[str, Any]:
    """``activeDeadlineSeconds``: the task's timeout, rounded up to whole seconds."""
    if request.timeout is None:
        return {}
    if version < _SINCE_ACTIVE_DEADLINE:
        raise ManifestError(
            f"task {request.task_name!r} has timeout={request.timeout:g}s, but KubeRay "
            f"{kuberay_version} has no activeDeadlineSeconds (added in 1.1.0): target a newer "
            "KubeRay or drop the timeout"
        )
    return {"activeDeadlineSeconds": math.ceil(request.timeout)}


def pre_running_fields(
    request: RayJobRequest, version: tuple[int, ...], kuberay_version: str
) -> dict[str, Any]:
    """``preRunningDeadlineSeconds``: how long the cluster may take to get the job running."""
    seconds = request.pre_running_deadline_seconds
    if seconds is None:
        return {}
    if version < _SINCE_PRE_RUNNING_DEADLINE:
        raise ManifestError(
            f"task {request.task_name!r} has pre_running_deadline_seconds={seconds}, but KubeRay "
            f"{kuberay_version} has no preRunningDeadlineSeconds (added in 1.6.0): target a "
            "newer KubeRay or drop pre_running_deadline_seconds"
        )
    return {"preRunningDeadlineSeconds": seconds}


def retry_fields(
    request: RayJobRequest, version: tuple[int, ...], kuberay_version: str
) -> dict[str, Any]:
    """``backoffLimit``: the task's retries, each on a new RayCluster."""
    if version >= _SINCE_BACKOFF_LIMIT:
        return {"backoffLimit": request.retries}
    if request.retries:
        raise ManifestError(
            f"task {request.task_name!r} has retries={request.retries}, but KubeRay "
            f"{kuberay_version} cannot retry a RayJob (backoffLimit was added in 1.2.0): target "
            "a newer KubeRay or set retries=0"
        )
    return {}
