"""``flyray.init()`` at the top of ``__main__``, ``flyray.run``, and a task with two outputs.

Flyte 2.12.1 (local mode) printed:
    ActionOutputs(o0=3, o1="0, 1, 4")
    3
    0, 1, 4
"""

import ray

import flyray
from flyray.plugins.ray import RayJobConfig, WorkerNodeConfig

env = flyray.TaskEnvironment(
    name="outputs_env",
    plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)]),
)


@ray.remote
def square(x: int) -> int:
    return x * x


@env.task
def squares(n: int) -> tuple[int, str]:
    values = ray.get([square.remote(i) for i in range(n)])
    return len(values), ", ".join(str(v) for v in values)


if __name__ == "__main__":
    flyray.init()
    run = flyray.run(squares, 3)
    run.wait()
    print(run.outputs())
    count, text = run.outputs()
    print(count)
    print(text)
