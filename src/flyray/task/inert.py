"""Flyte settings a mode cannot honour: named in one warning each, never silently dropped.

flyray accepts every setting a Flyte program passes. Where one has no effect in the mode a
task runs in (a Kubernetes service account in ``local`` mode, a result cache anywhere), the
first run of that task in that mode says so with a ``FlyrayWarning``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

from flyray.task.protocols import TaskSettings
from flyray.warn import FlyrayWarning

__all__ = ["settings_without_effect", "warn_without_effect"]

_KUBE_MODES = ("kuberay",)
_CLUSTER_MODES = ("local-cluster", "kuberay")  # modes whose clusters flyray creates
_warned: set[tuple[str, str, str]] = set()


def settings_without_effect(task: TaskSettings, mode: str) -> Iterator[tuple[str, str]]:
    """(setting, why) for each setting of ``task`` that ``mode`` does not honour."""
    env = task.env
    pods_only = f"has no effect in {mode} mode (only kuberay pods use it)"
    if mode not in _KUBE_MODES:
        if task.service_account:
            yield "service_account", pods_only
        if task.effective_pod_template is not None and mode not in _CLUSTER_MODES:
            yield "pod_template", pods_only
        if any(secret.mount is not None for secret in env.secrets):
            yield "Secret.mount", pods_only
    if mode == "cluster":
        yield from _cluster_mode_only(task)
    if isinstance(task.pod_template or env.pod_template, str):
        yield (
            "pod_template",
            "names a pod template kept by Flyte's backend, which flyray does not have: "
            "pass a flyray.PodTemplate instead",
        )
    if env.reusable is not None and mode not in _CLUSTER_MODES:
        yield "reusable", f"has no effect in {mode} mode (flyray creates no cluster to keep)"
    if task.interruptible or (task.interruptible is None and env.interruptible):
        yield (
            "interruptible",
            "has no effect: flyray does not pick spot nodes; put your cloud's spot node "
            "selector and toleration in a pod_template",
        )
    if _caches(task.cache) or (task.cache is None and _caches(env.cache)):
        yield "cache", "has no effect: flyray does not cache task results"
    if task.queue or env.queue:
        yield "queue", "has no effect: flyray has no queues (the mode chooses where a task runs)"
    if task.report:
        yield "report", "has no effect: flyray makes no HTML reports"
    if task.triggers:
        yield "triggers", "have no effect: flyray runs tasks when asked (use cron to schedule)"
    if task.links:
        yield "links", "have no effect: flyray has no UI to show them in"


def warn_without_effect(task: TaskSettings, mode: str) -> None:
    """Warn once per task, setting and mode about what ``mode`` does not honour."""
    for setting, why in settings_without_effect(task, mode):
        key = (task.name, setting, mode)
        if key in _warned:
            continue
        _warned.add(key)
        warnings.warn(f"task {task.name!r}: {setting} {why}", FlyrayWarning, stacklevel=3)


def _cluster_mode_only(task: TaskSettings) -> Iterator[tuple[str, str]]:
    """What an existing cluster (cluster mode) does not take from a task: shape and secrets."""
    config = task.plugin_config
    head = getattr(config, "head_node_config", None)
    shaped = getattr(config, "worker_node_config", None) or (
        head is not None and (head.requests or head.limits or head.ray_start_params)
    )
    kept = getattr(config, "shutdown_after_job_finishes", False) or (
        getattr(config, "ttl_seconds_after_finished", None) is not None
    )
    if shaped or kept or getattr(config, "enable_autoscaling", False):
        yield (
            "RayJobConfig's cluster (head, worker groups, autoscaling, shutdown and TTL)",
            "has no effect in cluster mode: the cluster exists already and is not changed",
        )
    names = [s.env_var for s in task.env.secrets if s.env_var]
    if names:
        yield (
            "secrets",
            "have no effect in cluster mode: an existing cluster gets no Kubernetes Secret, so "
            f"its own environment must set {', '.join(names)}",
        )


def _caches(cache: object) -> bool:
    behavior = getattr(cache, "behavior", cache)
    return behavior in ("auto", "override")
