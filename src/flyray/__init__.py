"""flyray: declare a Ray cluster next to a Python task and run it anywhere.

The public API is what this module exports; the Ray plugin's is ``flyray.plugins.ray``.
Importing flyray imports neither Ray nor Kubernetes: they load when a task runs.
"""

from flyray._version import __version__
from flyray.config.accelerators import AMD_GPU, GPU, HABANA_GAUDI, TPU, Device, Neuron
from flyray.config.image import Image
from flyray.config.pod_template import PodTemplate
from flyray.config.policies import Backoff, Cache, RetryStrategy, ReusePolicy, Timeout
from flyray.config.resources import Resources
from flyray.config.secrets import Secret
from flyray.errors import (
    ConfigError,
    FlyrayError,
    ManifestError,
    PluginNotFoundError,
    RunStoreError,
    SubmissionError,
    TaskError,
    TaskLoadError,
    TaskTimeoutError,
)
from flyray.init import init, init_from_api_key, init_from_config, init_in_cluster, init_passthrough
from flyray.outputs import ActionOutputs
from flyray.runner import Run, RunContext, run, with_runcontext
from flyray.store.record import RunStatus
from flyray.task.base import FunctionTask
from flyray.task.environment import TaskEnvironment
from flyray.task.registry import register_plugin
from flyray.warn import FlyrayWarning

__all__ = [  # noqa: RUF022 - plain sorted() order, which tests/test_public_api.py checks
    "AMD_GPU",
    "ActionOutputs",
    "Backoff",
    "Cache",
    "ConfigError",
    "Device",
    "FlyrayError",
    "FlyrayWarning",
    "FunctionTask",
    "GPU",
    "HABANA_GAUDI",
    "Image",
    "ManifestError",
    "Neuron",
    "PluginNotFoundError",
    "PodTemplate",
    "Resources",
    "RetryStrategy",
    "ReusePolicy",
    "Run",
    "RunContext",
    "RunStatus",
    "RunStoreError",
    "Secret",
    "SubmissionError",
    "TPU",
    "TaskEnvironment",
    "TaskError",
    "TaskLoadError",
    "TaskTimeoutError",
    "Timeout",
    "__version__",
    "init",
    "init_from_api_key",
    "init_from_config",
    "init_in_cluster",
    "init_passthrough",
    "register_plugin",
    "run",
    "with_runcontext",
]
