"""``RayFunctionTask``: connects to Ray in ``pre``, describes its cluster in ``custom_config``."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

from flyray.errors import SubmissionError
from flyray.manifest.pod import ray_pod_template, resource_requirements
from flyray.plugins.ray.config import (
    AutoscalerOptions,
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
from flyray.task.context import in_cluster

# The spec imports the config classes from this module too.
__all__ = [
    "WORKING_DIR_EXCLUDES",
    "AutoscalerOptions",
    "HeadNodeConfig",
    "RayFunctionTask",
    "RayJobConfig",
    "WorkerNodeConfig",
]

JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for the driver

# Left out of the working directory a job driver ships to its workers: the spec's names,
# flyray's own bundle archives, version control, virtualenvs and caches.
WORKING_DIR_EXCLUDES = [
    "script_mode.tar.gz",
    "fast*.tar.gz",
    ".python_history",
    "flyray-bundle-*.zip",
    ".flyray/",
    ".git/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",
    ".ruff_cache/",
]


class RayFunctionTask(FunctionTask):
    """A task whose environment declares a Ray cluster with a ``RayJobConfig``."""

    plugin_config: RayJobConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._started_ray = False

    async def pre(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call ``ray.init()`` unless Ray is already initialised (then leave it as it is)."""
        import ray

        if ray.is_initialized():
            return {}
        init_params: dict[str, Any] = {}
        if self.plugin_config.address is not None:
            init_params["address"] = self.plugin_config.address
        runtime_env = self.runtime_env()
        if runtime_env:
            init_params["runtime_env"] = runtime_env
        address = self.plugin_config.address or os.environ.get("RAY_ADDRESS")
        started = time.monotonic()
        try:
            ray.init(**init_params)
        except (ConnectionError, TimeoutError) as exc:
            waited = time.monotonic() - started
            raise SubmissionError(
                f"could not connect to Ray at {address} (waited {waited:.0f} s): "
                f"{str(exc).strip() or type(exc).__name__}; check the address, that the "
                "cluster is up, and for token authentication RAY_AUTH_MODE=token with "
                "RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH"
            ) from exc
        self._started_ray = True
        return {}

    async def post(self, return_vals: Any) -> Any:
        """Shut down a Ray instance that ``pre`` started; leave alone one it only joined."""
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False
        return return_vals

    def describe_pre(self) -> str:
        """What ``pre`` is doing, for progress displays."""
        address = self.plugin_config.address or os.environ.get("RAY_ADDRESS")
        return f"Connecting to Ray at {address}" if address else "Starting Ray"

    def runtime_env(self) -> dict[str, Any]:
        """The runtime_env ``pre`` passes to ``ray.init``: the config's, plus env vars.

        In a cluster (inside flyray's job entrypoint) the current directory also becomes the
        ``working_dir``, without temporary files, so every worker sees the task's code. Fields
        the Ray job already carries are left out: they apply to this driver and its workers
        already, and Ray refuses a driver runtime_env that repeats them.
        """
        env = dict(self.plugin_config.runtime_env or {})
        if self.env.env_vars:
            env["env_vars"] = {**env.get("env_vars", {}), **self.env.env_vars}
        if in_cluster():
            env["working_dir"] = os.getcwd()
            env["excludes"] = [*env.get("excludes", []), *WORKING_DIR_EXCLUDES]
            job_env = _job_runtime_env()
            if "working_dir" in job_env:
                job_env = {**job_env, "excludes": None}
            env = {key: value for key, value in env.items() if key not in job_env}
        return env

    def custom_config(self, sctx: Any = None) -> dict[str, Any]:
        """The cluster in KubeRay's terms: a ``rayClusterSpec`` plus the job-level fields.

        Deterministic and JSON-serialisable. The runtime env appears twice: base64 JSON
        (``runtimeEnv``, KubeRay < 1.1.0) and YAML (``runtimeEnvYAML``, KubeRay >= 1.1.0).
        """
        cfg = self.plugin_config
        cfg.validate()
        cluster: dict[str, Any] = {
            "enableInTreeAutoscaling": cfg.enable_autoscaling,
            "headGroupSpec": self._head_group(cfg.head_node_config),
            "workerGroupSpecs": [self._worker_group(w) for w in cfg.worker_node_config],
        }
        if cfg.autoscaler_options is not None:
            cluster["autoscalerOptions"] = _autoscaler_options(cfg.autoscaler_options)
        config: dict[str, Any] = {
            "rayClusterSpec": cluster,
            "shutdownAfterJobFinishes": cfg.shutdown_after_job_finishes,
        }
        if cfg.ttl_seconds_after_finished is not None:
            config["ttlSecondsAfterFinished"] = cfg.ttl_seconds_after_finished
        if cfg.pre_running_deadline_seconds is not None:
            config["preRunningDeadlineSeconds"] = cfg.pre_running_deadline_seconds
        if cfg.runtime_env:
            config["runtimeEnv"] = encode_runtime_env(cfg.runtime_env)
            config["runtimeEnvYAML"] = runtime_env_yaml(cfg.runtime_env)
        return config

    def _head_group(self, head: HeadNodeConfig) -> dict[str, Any]:
        requests, limits = head_resources(head, self.env.resources)
        where = (
            "HeadNodeConfig"
            if (requests, limits) == (head.requests, head.limits)
            else ("TaskEnvironment.resources")
        )
        template = ray_pod_template(
            container_name="ray-head",
            requests=requests,
            limits=limits,
            pod_template=head.pod_template,
            image=self.env.image,
            where=where,
            **node_label_settings(requests, limits),
        )
        params = with_accelerator_resources(
            head.ray_start_params, accelerator_resources(requests, limits), where=where
        )
        return {"rayStartParams": dict(sorted(params.items())), "template": template}

    def _worker_group(self, worker: WorkerNodeConfig) -> dict[str, Any]:
        where = f"WorkerNodeConfig(group_name={worker.group_name!r})"
        template = ray_pod_template(
            container_name="ray-worker",
            requests=worker.requests,
            limits=worker.limits,
            pod_template=worker.pod_template,
            image=self.env.image,
            where=where,
            **node_label_settings(worker.requests, worker.limits),
        )
        params = with_accelerator_resources(
            worker.ray_start_params,
            accelerator_resources(worker.requests, worker.limits),
            where=where,
        )
        return {
            "groupName": worker.group_name,
            "replicas": worker.replicas,
            "minReplicas": _bound(worker.min_replicas, worker.replicas),
            "maxReplicas": _bound(worker.max_replicas, worker.replicas),
            "rayStartParams": dict(sorted(params.items())),
            "template": template,
        }


def _job_runtime_env() -> dict[str, Any]:
    """The runtime env of the Ray job this driver runs in (Ray passes it in the environment)."""
    job_config = json.loads(os.environ.get(JOB_CONFIG_ENV, "{}") or "{}")
    return job_config.get("runtime_env") or {}


def encode_runtime_env(runtime_env: dict[str, Any]) -> str:
    """The runtime env as base64 JSON, the field KubeRay read before 1.1.0."""
    text = json.dumps(runtime_env, sort_keys=True, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


def runtime_env_yaml(runtime_env: dict[str, Any]) -> str:
    """The runtime env as YAML, the ``runtimeEnvYAML`` field of KubeRay >= 1.1.0."""
    import yaml

    return yaml.safe_dump(runtime_env, sort_keys=True, default_flow_style=False)


def _bound(value: int | None, replicas: int) -> int:
    """KubeRay needs min and max written; without autoscaling both default to ``replicas``."""
    return replicas if value is None else value


def _autoscaler_options(options: AutoscalerOptions) -> dict[str, Any]:
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
