"""GPU types in the Ray nodes' requests: kept for the cluster, the task still runs on a CPU.

Flyte 2.12.1 (local mode) printed:
    T4 1
    ActionOutputs(o0=[2, 4, 6])
    [2, 4, 6]
"""

import ray

import flyray
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

t4 = flyray.GPU(device="T4", quantity=1)

ray_config = RayJobConfig(
    head_node_config=HeadNodeConfig(requests=flyray.Resources(cpu=1, gpu=t4)),
    worker_node_config=[
        WorkerNodeConfig(
            group_name="a100", replicas=1, requests=flyray.Resources(cpu=2, gpu="A100:1")
        ),
        WorkerNodeConfig(group_name="a10g", replicas=1, requests=flyray.Resources(gpu="A10G:1")),
    ],
)

env = flyray.TaskEnvironment(name="gpu_env", plugin_config=ray_config)


@ray.remote
def double(x: int) -> int:
    return 2 * x


@env.task
def doubled(values: list[int]) -> list[int]:
    return ray.get([double.remote(v) for v in values])


if __name__ == "__main__":
    flyray.init()
    print(t4.device, t4.quantity)
    run = flyray.with_runcontext(mode="local").run(doubled, values=[1, 2, 3])
    print(run.outputs())
    print(run.outputs()[0])
