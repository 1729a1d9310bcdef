"""Autoscaling with Flyte's AutoscalerOptionsConfig; the group gives replicas but no bounds.

Flyte 2.12.1 (local mode) printed:
    3
    ActionOutputs(o0=285)
    285
"""

import ray

import flyray
from flyray.plugins.ray import AutoscalerOptionsConfig, RayJobConfig, WorkerNodeConfig

ray_config = RayJobConfig(
    worker_node_config=[WorkerNodeConfig(group_name="ray-group", replicas=2)],
    enable_autoscaling=True,
    autoscaler_options=AutoscalerOptionsConfig(
        upscaling_mode=AutoscalerOptionsConfig.UpscalingMode.CONSERVATIVE,
        idle_timeout_seconds=60,
        env={"AUTOSCALER_LOG_LEVEL": "debug"},
        resources=flyray.Resources(cpu=("500m", "1"), memory=("512Mi", "1Gi")),
    ),
)

env = flyray.TaskEnvironment(name="autoscaling_env", plugin_config=ray_config)


@ray.remote
def square(x: int) -> int:
    return x * x


@env.task
def sum_of_squares(n: int) -> int:
    return sum(ray.get([square.remote(i) for i in range(n)]))


if __name__ == "__main__":
    flyray.init()
    print(AutoscalerOptionsConfig.UpscalingMode.CONSERVATIVE)
    run = flyray.with_runcontext(mode="local").run(sum_of_squares, n=10)
    print(run.outputs())
    print(run.outputs()[0])
