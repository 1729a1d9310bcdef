"""The modes and their executors, looked up by name and imported only when a mode is used."""

from __future__ import annotations

import importlib

from flyray.errors import ConfigError
from flyray.executors.base import Executor

__all__ = ["MODES", "REMOTE_MODES", "executor_type"]

# mode -> "module:ExecutorClass"
MODES: dict[str, str] = {
    "local": "flyray.executors.local.executor:LocalExecutor",
    "local-cluster": "flyray.executors.localcluster.executor:LocalClusterExecutor",
    "cluster": "flyray.executors.jobs.cluster:ClusterExecutor",
    "kuberay": "flyray.executors.kuberay.executor:KubeRayExecutor",
}
REMOTE_MODES = ("local-cluster", "cluster", "kuberay")  # what the ``remote_mode`` setting names


def executor_type(mode: str) -> type[Executor]:
    """The executor class of ``mode``; an unknown mode is a ConfigError naming the known ones."""
    if mode not in MODES:
        raise ConfigError("mode", mode, f"must be one of: {', '.join(MODES)}")
    module, _, name = MODES[mode].partition(":")
    return getattr(importlib.import_module(module), name)
