"""A Ray runtime_env with env_vars: every Ray worker of the task's cluster sees them.

Flyte 2.12.1 (local mode) printed:
    ActionOutputs(o0=['unset', 'unset'])
    ['unset', 'unset']
Flyte's local mode does not pass runtime_env to ray.init; on a cluster (and under flyray) the
workers see "small".
"""

import os

import ray

import flyray
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

ray_config = RayJobConfig(
    head_node_config=HeadNodeConfig(),
    worker_node_config=[WorkerNodeConfig(group_name="ray-group", replicas=1)],
    runtime_env={"env_vars": {"MODEL_SIZE": "small"}},
)

env = flyray.TaskEnvironment(name="runtime_env_env", plugin_config=ray_config)


@ray.remote
def model_size() -> str:
    return os.environ.get("MODEL_SIZE", "unset")


@env.task
def sizes(n: int) -> list[str]:
    return ray.get([model_size.remote() for _ in range(n)])


if __name__ == "__main__":
    flyray.init()
    run = flyray.with_runcontext(mode="local").run(sizes, n=2)
    print(run.outputs())
    print(run.outputs()[0])
