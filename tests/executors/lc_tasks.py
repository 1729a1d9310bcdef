"""Tasks that the local-cluster tests run as Ray jobs (this file travels in the code bundle)."""

import os
import signal
import time
from datetime import timedelta

import ray

import flyray
import flyray.errors
from flyray import Resources
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

# The seed's topology: a 1-CPU head and two 2-CPU workers in group "cpu-workers".
seed_env = flyray.TaskEnvironment(
    name="lc_seed",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(
            requests=Resources(cpu="1", memory="2Gi"), ray_start_params={"log-color": "True"}
        ),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="cpu-workers", replicas=2, requests=Resources(cpu="2", memory="4Gi")
            )
        ],
    ),
)

head_only = flyray.TaskEnvironment(
    name="lc_head_only",
    plugin_config=RayJobConfig(head_node_config=HeadNodeConfig(requests=Resources(cpu=1))),
)


@ray.remote
def square(x: int) -> int:
    return x * x


@ray.remote(resources={"cpu-workers": 1})
def node_of_group() -> str:
    return ray.get_runtime_context().get_node_id()


@ray.remote(resources={"cpu-workers": 1})
def raylet_pid() -> tuple[str, int]:
    """A worker process's parent is its node's raylet."""
    return ray.get_runtime_context().get_node_id(), os.getppid()


@seed_env.task
def describe_cluster(n: int) -> dict:
    """What the job sees: alive nodes, their CPUs and memory, and where pinned work ran."""
    nodes = [node for node in ray.nodes() if node["Alive"]]
    group_nodes = {node["NodeID"] for node in nodes if "cpu-workers" in node["Resources"]}
    pinned = set(ray.get([node_of_group.remote() for _ in range(6)]))
    return {
        "alive": len(nodes),
        "cpus": sorted(node["Resources"]["CPU"] for node in nodes),
        "memory_gib": sorted(node["Resources"].get("memory", 0) / 2**30 for node in nodes),
        "group_nodes": len(group_nodes),
        "pinned_on_group": bool(pinned) and pinned <= group_nodes,
        "sum": sum(ray.get([square.remote(i) for i in range(n)])),
    }


@seed_env.task
def survive_a_lost_worker(n: int) -> dict:
    """Kill one worker's raylet mid-job; Ray retries the lost tasks on the other worker."""
    victim_node, victim_pid = ray.get(raylet_pid.remote())
    slow = [slow_square.remote(i) for i in range(n)]
    os.kill(victim_pid, signal.SIGKILL)
    alive_after = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        alive = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
        if victim_node not in alive:
            alive_after = len(alive)
            break
        time.sleep(0.2)
    return {"sum": sum(ray.get(slow)), "alive_after": alive_after}


@ray.remote(resources={"cpu-workers": 1}, max_retries=3)
def slow_square(x: int) -> int:
    time.sleep(0.5)
    return x * x


@head_only.task
def fail_remotely(code: int) -> None:
    """Raise inside the job: the caller must get this traceback back."""
    raise RuntimeError(f"failed on purpose with code {code}")


@head_only.task(timeout=5)
def sleep_too_long() -> None:
    time.sleep(300)


@head_only.task
def sleep_until_interrupted() -> None:
    print("sleeping until the caller interrupts", flush=True)
    time.sleep(300)


kept_env = flyray.TaskEnvironment(
    name="lc_kept",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(requests=Resources(cpu=1)),
        shutdown_after_job_finishes=True,
        ttl_seconds_after_finished=4,
    ),
)


@kept_env.task
def quick() -> int:
    return ray.get(square.remote(3))


@head_only.task(retries=1)
def fail_once(marker: str) -> str:
    """Fail on the first attempt (leaving a marker file), succeed on the retry."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    return "second attempt"


one_worker = flyray.TaskEnvironment(
    name="lc_one_worker",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(requests=Resources(cpu=1)),
        worker_node_config=[
            WorkerNodeConfig(group_name="w", replicas=1, requests=Resources(cpu=1))
        ],
    ),
)


@ray.remote(resources={"w": 1})
def square_on_w(x: int) -> int:
    return x * x


@one_worker.task
def squares_on_the_worker(n: int) -> int:
    return sum(ray.get([square_on_w.remote(i) for i in range(n)]))


plain_ray = flyray.TaskEnvironment(name="lc_plain", plugin_config=RayJobConfig())


@plain_ray.task
def sum_of_squares(n: int) -> int:
    print(f"summing {n} squares", flush=True)
    return sum(ray.get([square.remote(i) for i in range(n)]))


@plain_ray.task(retries=2)
def always_fails() -> None:
    raise ValueError("this task always fails")


@plain_ray.task
def sleep_long() -> None:
    print("sleeping", flush=True)
    time.sleep(300)


@plain_ray.task
def alive_nodes() -> int:
    return sum(1 for node in ray.nodes() if node["Alive"])


@ray.remote
def env_var(name: str) -> str | None:
    return os.environ.get(name)


@plain_ray.task
def read_env(name: str) -> tuple[str | None, str | None]:
    """The variable as the job's driver and as a Ray worker see it."""
    return os.environ.get(name), ray.get(env_var.remote(name))


@plain_ray.task(
    retries=flyray.RetryStrategy(count=3, backoff=flyray.Backoff(base=timedelta(seconds=0.2)))
)
def gives_up(marker: str) -> None:
    """Fails twice (a marker file per attempt), then says not to retry."""
    attempts = len(os.listdir(marker))
    open(os.path.join(marker, str(attempts)), "w").close()
    if attempts < 2:
        raise ValueError(f"attempt {attempts + 1} failed")
    raise flyray.errors.NonRecoverableError("stop here")
