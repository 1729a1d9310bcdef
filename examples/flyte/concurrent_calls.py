"""Two concurrent calls of a Ray task, each with its own actor, gathered by an async driver.

Flyte 2.12.1 (local mode) printed:
    ActionOutputs(o0=[3, 5])
    [3, 5]
"""

import asyncio

import ray

import flyray
from flyray.plugins.ray import RayJobConfig, WorkerNodeConfig

ray_env = flyray.TaskEnvironment(
    name="concurrent_ray_env",
    plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)]),
)
driver_env = flyray.TaskEnvironment(name="concurrent_driver_env", depends_on=[ray_env])


@ray.remote
class Counter:
    def __init__(self) -> None:
        self.count = 0

    def add(self) -> int:
        self.count += 1
        return self.count


@ray_env.task
async def count_to(n: int) -> int:
    counter = Counter.remote()
    for _ in range(n - 1):
        await counter.add.remote()
    return await counter.add.remote()


@driver_env.task
async def driver(a: int, b: int) -> list[int]:
    return list(await asyncio.gather(count_to(a), count_to(b)))


if __name__ == "__main__":
    flyray.init()
    run = flyray.with_runcontext(mode="local").run(driver, a=3, b=5)
    print(run.outputs())
    print(run.outputs()[0])
