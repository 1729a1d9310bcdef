"""The spec's autoscaling example: a worker group that scales between 1 and 5 replicas.

flyray run examples/autoscaling.py scale_out --tasks 8
"""

import ray

import flyray
from flyray.plugins.ray import RayJobConfig, WorkerNodeConfig

worker_config = WorkerNodeConfig(
    group_name="autoscaling-group",
    replicas=1,
    min_replicas=1,
    max_replicas=5,
)

env = flyray.TaskEnvironment(
    name="autoscaling_env",
    plugin_config=RayJobConfig(worker_node_config=[worker_config], enable_autoscaling=True),
)


@env.task
def scale_out(tasks: int = 8) -> int:
    """Run ``tasks`` remote tasks and count them."""

    @ray.remote
    def one() -> int:
        return 1

    return sum(ray.get([one.remote() for _ in range(tasks)]))
