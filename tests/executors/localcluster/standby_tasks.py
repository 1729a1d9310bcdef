"""Tasks that the standby-driver tests run on a one-node warm cluster ('standby')."""

import os
import time

import ray

import flyray
from flyray import Resources
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig

env = flyray.TaskEnvironment(
    name="standby",
    plugin_config=RayJobConfig(head_node_config=HeadNodeConfig(requests=Resources(cpu=1))),
    env_vars={"STANDBY_TEST": "on"},
)


@env.task
def where() -> dict:
    """Where the driver and a worker of the job run, and what code and env they see."""

    @ray.remote
    def on_a_worker() -> dict:
        # A module of the code bundle, found from the bundle's root on the worker.
        from tests.executors.localcluster.standby_helper import answer

        return {
            "answer": answer(),
            "env": os.environ.get("STANDBY_TEST"),
            "pid": os.getpid(),
        }

    print("the task prints this")
    return {
        "working_dir": ray.get_runtime_context().runtime_env.get("working_dir"),
        "cwd": os.getcwd(),
        "driver_env": os.environ.get("STANDBY_TEST"),
        "worker": ray.get(on_a_worker.remote()),
    }


@env.task
def fails() -> None:
    raise ValueError("the task failed on purpose")


@env.task(retries=1)
def fails_once(flag: str) -> str:
    """Fails when the file ``flag`` does not exist yet, which it then creates."""
    if not os.path.exists(flag):
        open(flag, "w").close()
        raise RuntimeError("first attempt fails")
    return "second attempt"


@env.task(timeout=3)
def sleeps() -> None:
    time.sleep(120)
