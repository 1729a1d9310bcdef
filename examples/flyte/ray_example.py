"""Flyte's own Ray example: a Ray task starts a plain task and fans out to Ray.

Flyte 2.12.1 (local mode) printed: "Hello from the Ray task!", "ActionOutputs(o0=[0, 1, 4, 9])"
and "[0, 1, 4, 9]", one per line.
"""

import asyncio

import ray

import flyray
from flyray.plugins.ray.task import HeadNodeConfig, RayJobConfig, WorkerNodeConfig


@ray.remote
def f(x):
    return x * x


ray_config = RayJobConfig(
    head_node_config=HeadNodeConfig(ray_start_params={"log-color": "True"}),
    worker_node_config=[WorkerNodeConfig(group_name="ray-group", replicas=2)],
    enable_autoscaling=False,
    shutdown_after_job_finishes=True,
    ttl_seconds_after_finished=300,
)

image = flyray.Image.from_debian_base(name="ray").with_apt_packages("wget")

task_env = flyray.TaskEnvironment(
    name="hello_ray",
    resources=flyray.Resources(cpu=(1, 2), memory=("400Mi", "1000Mi")),
    image=image,
)
ray_env = flyray.TaskEnvironment(
    name="ray_env",
    plugin_config=ray_config,
    image=image,
    resources=flyray.Resources(cpu=(3, 4), memory=("3000Mi", "5000Mi")),
    depends_on=[task_env],
)


@task_env.task()
async def hello_ray():
    print("Hello from the Ray task!")


@ray_env.task
async def hello_ray_nested(n: int = 3) -> list[int]:
    t = asyncio.create_task(hello_ray())
    futures = [f.remote(i) for i in range(n)]
    res = ray.get(futures)
    await t
    return res


if __name__ == "__main__":
    flyray.init_from_config()
    run = flyray.run(hello_ray_nested, n=4)
    run.wait()
    print(run.outputs())
    print(run.outputs()[0])
