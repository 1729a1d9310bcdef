"""A task whose environment's Image sets an env var (this file travels in the code bundle)."""

import os

import ray

import flyray
from flyray import Resources
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig

image_env = flyray.TaskEnvironment(
    name="image_env",
    plugin_config=RayJobConfig(head_node_config=HeadNodeConfig(requests=Resources(cpu=1))),
    image=flyray.Image.from_debian_base(name="ray").with_env_vars({"IMAGE_GREETING": "hello"}),
)


@ray.remote
def greeting_on_a_worker() -> tuple[str | None, int]:
    return os.environ.get("IMAGE_GREETING"), os.getpid()


@image_env.task
def greetings() -> dict:
    """The variable as the job's driver and a Ray worker process see it."""
    on_worker, worker_pid = ray.get(greeting_on_a_worker.remote())
    return {
        "driver": os.environ.get("IMAGE_GREETING"),
        "worker": on_worker,
        "same": worker_pid == os.getpid(),
    }
