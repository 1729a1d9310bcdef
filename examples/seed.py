"""The spec's Ray task: a head node and two CPU workers, squares summed on Ray.

Run it:  flyray run examples/seed.py my_ray_task --n 10     (prints 285)
"""

import ray

import flyray
from flyray import Resources
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

ray_config = RayJobConfig(
    head_node_config=HeadNodeConfig(
        requests=Resources(cpu="1", memory="2Gi"),
        ray_start_params={"log-color": "True"},
    ),
    worker_node_config=[
        WorkerNodeConfig(
            group_name="cpu-workers",
            replicas=2,
            requests=Resources(cpu="2", memory="4Gi"),
        )
    ],
    shutdown_after_job_finishes=True,
    ttl_seconds_after_finished=600,
)

ray_env = flyray.TaskEnvironment(
    name="ray_env",
    plugin_config=ray_config,
)


@ray_env.task
async def my_ray_task(n: int) -> int:
    # This code runs on the Ray head node
    @ray.remote
    def f(x):
        return x * x

    futures = [f.remote(i) for i in range(n)]
    return sum(ray.get(futures))


if __name__ == "__main__":
    print(flyray.run(my_ray_task, n=10).result())
