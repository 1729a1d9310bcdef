"""A driver task in a plain environment calls a sync Ray task: ``await t.aio(...)``, ``override``.

Flyte 2.12.1 (local mode) printed:
    ActionOutputs(o0=[14, 30])
    [14, 30]
"""

from datetime import timedelta

import ray

import flyray
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

ray_env = flyray.TaskEnvironment(
    name="nested_ray_env",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(),
        worker_node_config=[WorkerNodeConfig(group_name="ray-group", replicas=2)],
    ),
    resources=flyray.Resources(cpu=(1, 2), memory=("1Gi", "2Gi")),
)
driver_env = flyray.TaskEnvironment(name="nested_driver_env", depends_on=[ray_env])


@ray.remote
def square(x: int) -> int:
    return x * x


@ray_env.task(short_name="sum-of-squares", timeout=timedelta(minutes=10))
def sum_of_squares(n: int) -> int:
    return sum(ray.get([square.remote(i) for i in range(n)]))


@driver_env.task(timeout=flyray.Timeout(max_runtime=timedelta(minutes=20)))
async def driver(a: int, b: int) -> list[int]:
    first = await sum_of_squares.aio(a)
    second = await sum_of_squares.override(short_name="sum-of-squares-b", retries=1).aio(b)
    return [first, second]


if __name__ == "__main__":
    flyray.init()
    run = flyray.with_runcontext(mode="local").run(driver, a=4, b=5)
    print(run.outputs())
    print(run.outputs()[0])
