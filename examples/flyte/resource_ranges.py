"""Resources as (request, limit) ranges, on the environment and on the Ray nodes.

Flyte 2.12.1 (local mode) printed:
    ActionOutputs(o0=25)
    25
"""

import ray

import flyray
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

ray_config = RayJobConfig(
    head_node_config=HeadNodeConfig(
        requests=flyray.Resources(cpu=1, memory="1Gi"),
        limits=flyray.Resources(cpu=2, memory="2Gi"),
    ),
    worker_node_config=[
        WorkerNodeConfig(
            group_name="workers",
            replicas=2,
            requests=flyray.Resources(cpu=(1, 2), memory=("1Gi", "2Gi")),
        )
    ],
)

env = flyray.TaskEnvironment(
    name="ranges_env",
    plugin_config=ray_config,
    resources=flyray.Resources(cpu=(1, 2), memory=("1Gi", "2Gi")),
)


@ray.remote
def is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))


@env.task
def count_primes(below: int) -> int:
    return sum(ray.get([is_prime.remote(i) for i in range(below)]))


if __name__ == "__main__":
    flyray.init()
    run = flyray.with_runcontext(mode="local").run(count_primes, below=100)
    print(run.outputs())
    print(run.outputs()[0])
