"""The spec's runtime environment example: env vars (and pip packages) across the cluster.

flyray run examples/runtime_env.py greeting
"""

import os

import ray

import flyray
from flyray.plugins.ray import RayJobConfig, WorkerNodeConfig

ray_config = RayJobConfig(
    worker_node_config=[WorkerNodeConfig(group_name="workers", replicas=1)],
    # The spec also installs {"pip": ["numpy", "pandas"]}; that works the same way but
    # makes Ray build a virtualenv on first use, so this example sticks to env vars.
    runtime_env={"env_vars": {"GREETING": "hello from the runtime env"}},
)

env = flyray.TaskEnvironment(name="runtime_env_example", plugin_config=ray_config)


@env.task
def greeting() -> str:
    """Read GREETING inside a Ray worker process."""

    @ray.remote
    def read() -> str:
        return os.environ["GREETING"]

    return ray.get(read.remote())
