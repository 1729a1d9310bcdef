"""A reusable Ray environment (``ReusePolicy``) shared by two concurrent calls of a driver.

Flyte 2.12.1 (local mode) printed:
    ActionOutputs(o0=[30, 140])
    [30, 140]
"""

import asyncio

import ray

import flyray
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig


@ray.remote
def square(x: int) -> int:
    return x * x


ray_env = flyray.TaskEnvironment(
    name="reusable_ray_env",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(),
        worker_node_config=[WorkerNodeConfig(group_name="ray-group", replicas=2)],
        enable_autoscaling=False,
    ),
    resources=flyray.Resources(cpu=(1, 2), memory=("2000Mi", "4000Mi")),
    reusable=flyray.ReusePolicy(replicas=1, idle_ttl=600, scope="run"),
)
driver_env = flyray.TaskEnvironment(name="reusable_driver_env", depends_on=[ray_env])


@ray_env.task
async def sum_of_squares(n: int) -> int:
    return sum(ray.get([square.remote(i) for i in range(n)]))


@driver_env.task
async def driver(a: int = 5, b: int = 8) -> list[int]:
    first, second = await asyncio.gather(sum_of_squares(a), sum_of_squares(b))
    return [first, second]


if __name__ == "__main__":
    flyray.init()
    run = flyray.with_runcontext(mode="local").run(driver, a=5, b=8)
    print(run.outputs())
    print(run.outputs()[0])
