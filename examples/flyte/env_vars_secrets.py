"""Environment variables and secrets on a Ray environment; a Ray worker reads the variable.

Flyte 2.12.1 (local mode) printed:
    OPENAI_API_KEY OPENAI_API_KEY
    ActionOutputs(o0="unset")
    unset
Flyte's local mode ignores env_vars; on a cluster (and under flyray) the task sees "hello".
"""

import os

import ray

import flyray
from flyray.plugins.ray import RayJobConfig, WorkerNodeConfig

by_name = flyray.Secret(key="openai_api_key", as_env_var="OPENAI_API_KEY")
by_group = flyray.Secret(key="api-key", group="openai")

env = flyray.TaskEnvironment(
    name="secrets_env",
    plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)]),
    env_vars={"GREETING": "hello"},
    secrets=[by_name],
)
other_env = flyray.TaskEnvironment(name="openai_env", secrets=by_group)


@ray.remote
def greeting() -> str:
    return os.environ.get("GREETING", "unset")


@env.task
def read_greeting() -> str:
    return ray.get(greeting.remote())


if __name__ == "__main__":
    flyray.init()
    print(by_name.as_env_var, by_group.as_env_var)
    run = flyray.with_runcontext(mode="local").run(read_greeting)
    print(run.outputs())
    print(run.outputs()[0])
