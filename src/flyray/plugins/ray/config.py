"""The Ray cluster a task declares: head node, worker groups, autoscaling, runtime env.

Every class checks and normalises itself when constructed; an error names the field path,
the value and the rule. ``RayJobConfig.validate()`` runs again before rendering, so a config
changed after construction is still checked.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from flyray.config.names import check_dns1123_label
from flyray.config.pod_template import PodTemplate, as_pod_template
from flyray.config.resources import Resources
from flyray.errors import ConfigError
from flyray.plugins.ray.runtime_env import check_runtime_env
from flyray.warn import FlyrayWarning

__all__ = [
    "KUBERAY_MAX_REPLICAS",
    "KUBERAY_MIN_REPLICAS",
    "AutoscalerOptions",
    "AutoscalerOptionsConfig",
    "HeadNodeConfig",
    "RayJobConfig",
    "WorkerNodeConfig",
]

# KubeRay's defaults for a worker group's bounds (the CRD's), used under autoscaling.
KUBERAY_MIN_REPLICAS = 0
KUBERAY_MAX_REPLICAS = 2147483647

StartParam = str | int | float | bool
_PARAM_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_UPSCALING_MODES = ("Default", "Aggressive", "Conservative")
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
_ADDRESS = re.compile(rf"^(?:(?:ray|https?)://)?{_HOST}:(?P<port>[0-9]{{1,5}})/?$")


@dataclass
class HeadNodeConfig:
    """The head node: ``ray start`` parameters, resources and an optional pod template."""

    ray_start_params: dict[str, StartParam] | None = None
    pod_template: PodTemplate | dict[str, Any] | None = None
    requests: Resources | None = None
    limits: Resources | None = None

    def __post_init__(self) -> None:
        _check_node(self, "HeadNodeConfig")


@dataclass
class WorkerNodeConfig:
    """A worker group: its name, replica bounds, ``ray start`` parameters and resources."""

    group_name: str
    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    ray_start_params: dict[str, StartParam] | None = None
    pod_template: PodTemplate | dict[str, Any] | None = None
    requests: Resources | None = None
    limits: Resources | None = None

    def __post_init__(self) -> None:
        where = f"WorkerNodeConfig(group_name={self.group_name!r})"
        check_dns1123_label(f"{where}.group_name", self.group_name)
        for name in ("replicas", "min_replicas", "max_replicas"):
            value = getattr(self, name)
            if value is not None or name == "replicas":
                _check_whole_number(f"{where}.{name}", value)
        lo, hi = self.min_replicas, self.max_replicas
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(f"{where}.min_replicas", lo, f"must be <= max_replicas ({hi})")
        if lo is not None and self.replicas < lo:
            raise ConfigError(f"{where}.replicas", self.replicas, f"must be >= min_replicas ({lo})")
        if hi is not None and self.replicas > hi:
            raise ConfigError(f"{where}.replicas", self.replicas, f"must be <= max_replicas ({hi})")
        _check_node(self, where)


@dataclass
class AutoscalerOptionsConfig:
    """Options of KubeRay's in-tree autoscaler (``rayClusterSpec.autoscalerOptions``).

    ``upscaling_mode`` is an ``AutoscalerOptionsConfig.UpscalingMode`` value (Flyte's ints) or
    KubeRay's name ("Default", "Aggressive", "Conservative"); ``resources`` may use
    ``(request, limit)`` tuples. ``version`` ("v1"/"v2") is flyray's addition.
    """

    class UpscalingMode:
        """Flyte's upscaling modes (the values of its ``AutoscalerOptions`` proto enum)."""

        UNSPECIFIED = 0
        DEFAULT = 1
        AGGRESSIVE = 2
        CONSERVATIVE = 3

    upscaling_mode: int | str | None = None
    idle_timeout_seconds: int | None = None
    image: str | None = None
    env: dict[str, str] | None = None
    resources: Resources | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        where = "AutoscalerOptionsConfig"
        mode = self.upscaling_mode
        if not (mode is None or mode in _UPSCALING_MODES or mode in _UPSCALING_MODE_NAMES):
            raise ConfigError(
                f"{where}.upscaling_mode",
                mode,
                f"must be an AutoscalerOptionsConfig.UpscalingMode value or one of "
                f"{_UPSCALING_MODES}",
            )
        if self.idle_timeout_seconds is not None:
            _check_whole_number(f"{where}.idle_timeout_seconds", self.idle_timeout_seconds)
        if self.image is not None and (not isinstance(self.image, str) or not self.image.strip()):
            raise ConfigError(f"{where}.image", self.image, "must be a non-empty string")
        if self.resources is not None and not isinstance(self.resources, Resources):
            raise ConfigError(f"{where}.resources", self.resources, "must be a flyray.Resources")
        if self.env is not None and not (
            isinstance(self.env, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in self.env.items())
        ):
            raise ConfigError(f"{where}.env", self.env, "must be a dict of str to str")
        if self.version not in (None, "v1", "v2"):
            raise ConfigError(f"{where}.version", self.version, "must be 'v1' or 'v2'")

    @property
    def kuberay_upscaling_mode(self) -> str | None:
        """The mode as KubeRay spells it, or None (KubeRay's default) when unspecified."""
        mode = self.upscaling_mode
        return _UPSCALING_MODE_NAMES.get(mode) if isinstance(mode, int) else mode


AutoscalerOptions = AutoscalerOptionsConfig  # flyray's earlier name

_UPSCALING_MODE_NAMES = {
    AutoscalerOptionsConfig.UpscalingMode.UNSPECIFIED: None,
    AutoscalerOptionsConfig.UpscalingMode.DEFAULT: "Default",
    AutoscalerOptionsConfig.UpscalingMode.AGGRESSIVE: "Aggressive",
    AutoscalerOptionsConfig.UpscalingMode.CONSERVATIVE: "Conservative",
}


@dataclass
class RayJobConfig:
    """A Ray cluster for a task: the spec's ``RayJobConfig``.

    With ``address`` set, the task uses that existing cluster and no cluster is created.
    ``pre_running_deadline_seconds`` fails a KubeRay run whose cluster is not running within
    that many seconds (an image that cannot be pulled, no node with room), instead of waiting.
    With ``enable_autoscaling``, a worker group without ``min_replicas``/``max_replicas`` gets
    KubeRay's defaults (0 and unbounded), with a warning. ``reuse_cluster`` (or the
    environment's ``reusable=ReusePolicy(...)``) keeps the cluster between runs: each run is a
    RayJob that selects it, deleted after the idle time (``idle_ttl`` or
    ``cluster_idle_timeout``).
    """

    worker_node_config: list[WorkerNodeConfig] = field(default_factory=list)
    head_node_config: HeadNodeConfig | None = None
    enable_autoscaling: bool = False
    autoscaler_options: AutoscalerOptionsConfig | None = None
    runtime_env: dict[str, Any] | None = None
    address: str | None = None
    shutdown_after_job_finishes: bool = False
    ttl_seconds_after_finished: int | None = None
    pre_running_deadline_seconds: int | None = None
    reuse_cluster: bool = False

    def __post_init__(self) -> None:
        self.validate()
        self._warn_without_effect()

    def _warn_without_effect(self) -> None:
        """Settings KubeRay accepts but that do less than they seem to (once, when made)."""
        if self.autoscaler_options is not None and not self.enable_autoscaling:
            warnings.warn(
                "RayJobConfig.autoscaler_options has no effect without "
                "enable_autoscaling=True (KubeRay runs no autoscaler then)",
                FlyrayWarning,
                stacklevel=4,
            )
        for i, worker in enumerate(self.worker_node_config):
            if self.enable_autoscaling and worker.max_replicas is None:
                warnings.warn(
                    f"worker_node_config[{i}] ({worker.group_name!r}) has "
                    "enable_autoscaling=True and no max_replicas: KubeRay's defaults apply "
                    f"(min {KUBERAY_MIN_REPLICAS}, max {KUBERAY_MAX_REPLICAS}, i.e. unbounded); "
                    "set min_replicas/max_replicas to bound the autoscaler",
                    FlyrayWarning,
                    stacklevel=4,
                )

    def validate(self) -> None:
        """Check every rule that spans fields or nodes (node rules ran at their construction)."""
        if self.head_node_config is None:
            self.head_node_config = HeadNodeConfig()
        _check_type("head_node_config", self.head_node_config, HeadNodeConfig)
        _check_workers(self.worker_node_config)
        for name in ("enable_autoscaling", "shutdown_after_job_finishes", "reuse_cluster"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "must be True or False")
        if self.autoscaler_options is not None:
            _check_type("autoscaler_options", self.autoscaler_options, AutoscalerOptionsConfig)
        _check_ttl(self.ttl_seconds_after_finished, self.shutdown_after_job_finishes)
        _check_pre_running_deadline(self.pre_running_deadline_seconds)
        check_runtime_env(self.runtime_env)
        if self.address is not None:
            _check_address(self.address)
            if self.reuse_cluster:
                raise ConfigError(
                    "reuse_cluster",
                    True,
                    "cannot go with address= (that cluster is someone else's to keep)",
                )


def normalise_start_params(field_name: str, params: object) -> dict[str, str]:
    """``ray start`` parameters as KubeRay wants them: str keys and str values."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ConfigError(field_name, params, "must be a dict of parameter name to value")
    out: dict[str, str] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not _PARAM_KEY.match(key):
            raise ConfigError(
                f"{field_name}[{key!r}]",
                key,
                "must be a `ray start` option name without leading dashes, e.g. 'num-cpus'",
            )
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (int, float, str)):
            out[key] = str(value)
        else:
            raise ConfigError(f"{field_name}[{key!r}]", value, "must be a str, int, float or bool")
    return out


def _check_node(node: HeadNodeConfig | WorkerNodeConfig, where: str) -> None:
    node.ray_start_params = normalise_start_params(
        f"{where}.ray_start_params", node.ray_start_params
    )
    node.pod_template = as_pod_template(f"{where}.pod_template", node.pod_template)
    for name in ("requests", "limits"):
        value = getattr(node, name)
        if value is not None and not isinstance(value, Resources):
            raise ConfigError(f"{where}.{name}", value, "must be a flyray.Resources")
    _check_requests_within_limits(where, node.requests, node.limits)


def _check_requests_within_limits(
    where: str, requests: Resources | None, limits: Resources | None
) -> None:
    if requests is None or limits is None:
        return
    asked, capped = requests.comparable(), limits.comparable()
    for key, value in asked.items():
        if key == "gpu" and value and capped.get("gpu") != value:
            raise ConfigError(
                f"{where}.limits.gpu",
                limits.gpu,
                f"must match the GPU request ({requests.gpu!r}): Kubernetes needs GPU limits "
                "equal to requests",
            )
        if key in capped and value > capped[key]:
            raise ConfigError(
                f"{where}.requests.{key}",
                getattr(requests, key),
                f"must not exceed limits.{key} ({getattr(limits, key)!r})",
            )


def _check_workers(workers: object) -> None:
    if not isinstance(workers, list):
        raise ConfigError("worker_node_config", workers, "must be a list of WorkerNodeConfig")
    seen: set[str] = set()
    for i, worker in enumerate(workers):
        _check_type(f"worker_node_config[{i}]", worker, WorkerNodeConfig)
        if worker.group_name in seen:
            raise ConfigError(
                f"worker_node_config[{i}].group_name", worker.group_name, "must be unique"
            )
        seen.add(worker.group_name)


def _check_type(field_name: str, value: object, expected: type) -> None:
    if not isinstance(value, expected):
        raise ConfigError(field_name, value, f"must be a {expected.__name__}")


def _check_whole_number(field_name: str, value: object, minimum: int = 0, why: str = "") -> int:
    """An int of at least ``minimum`` (a bool is no number here); ``why`` ends the rule."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(field_name, value, f"must be an integer >= {minimum}{why}")
    return value


def _check_ttl(ttl: object, shutdown: bool) -> None:
    if ttl is None:
        return
    if _check_whole_number("ttl_seconds_after_finished", ttl) > 0 and not shutdown:
        raise ConfigError(
            "ttl_seconds_after_finished",
            ttl,
            "needs shutdown_after_job_finishes=True (the TTL counts down to deleting the cluster)",
        )


def _check_pre_running_deadline(seconds: object) -> None:
    if seconds is not None:
        why = " (seconds for the cluster to be ready and the job running)"
        _check_whole_number("pre_running_deadline_seconds", seconds, 1, why)


def _check_address(address: object) -> None:
    if address == "auto":
        return
    match = _ADDRESS.match(address) if isinstance(address, str) else None
    if not match or not 0 < int(match["port"]) < 65536:
        raise ConfigError(
            "address",
            address,
            "must be 'ray://host:port' (Ray Client), 'host:port' (GCS), 'auto' or "
            "'http(s)://host:port' (Jobs API)",
        )
