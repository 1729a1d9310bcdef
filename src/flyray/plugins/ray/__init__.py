"""The Ray plugin: declare a Ray cluster with ``RayJobConfig`` and run tasks on it.

Importing this module registers ``RayJobConfig`` -> ``RayFunctionTask``; it does not import
Ray, which loads only when a task runs.
"""

from flyray.config.pod_template import PodTemplate
from flyray.manifest.pod import pod_spec_from_resources
from flyray.plugins.ray.config import (
    AutoscalerOptions,
    AutoscalerOptionsConfig,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)
from flyray.plugins.ray.task import RayFunctionTask
from flyray.task.registry import register_plugin

__all__ = [
    "AutoscalerOptions",
    "AutoscalerOptionsConfig",
    "HeadNodeConfig",
    "PodTemplate",
    "RayFunctionTask",
    "RayJobConfig",
    "WorkerNodeConfig",
    "pod_spec_from_resources",
]

register_plugin(RayJobConfig, RayFunctionTask)
