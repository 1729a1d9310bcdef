"""Retries as an int and as a RetryStrategy; a task that keeps failing raises RuntimeUserError.

Flyte 2.12.1 (local mode) printed:
    ActionOutputs(o0=2)
    2
    failed: bad input 3
"""

import pathlib
import tempfile

import ray

import flyray
import flyray.errors
from flyray.plugins.ray import RayJobConfig, WorkerNodeConfig

env = flyray.TaskEnvironment(
    name="retries_env",
    plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)]),
)


@ray.remote
def attempt_number(marker: str) -> int:
    path = pathlib.Path(marker)
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


@env.task(retries=2)
def flaky(marker: str) -> int:
    n = ray.get(attempt_number.remote(marker))
    if n < 2:
        raise RuntimeError(f"attempt {n} fails")
    return n


@env.task(retries=flyray.RetryStrategy(count=1))
def always_fails(x: int) -> int:
    raise ValueError(f"bad input {x}")


if __name__ == "__main__":
    flyray.init()
    with tempfile.TemporaryDirectory() as tmp:
        run = flyray.with_runcontext(mode="local").run(flaky, marker=f"{tmp}/attempts")
        print(run.outputs())
        print(run.outputs()[0])
    try:
        flyray.with_runcontext(mode="local").run(always_fails, 3)
    except flyray.errors.RuntimeUserError as e:
        print("failed:", e)
