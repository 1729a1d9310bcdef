"""A Flyte-style autoscaling task that the local-cluster tests run (it travels in the bundle).

The head has no CPUs and the group starts empty (replicas 0, min 0, max 2, idle 5 s): two
one-CPU tasks that wait for each other need both workers at once, so the autoscaler must start
two nodes; once they are done, it must stop both after the idle timeout.
"""

import asyncio
import time

import ray

import flyray
from flyray.plugins.ray import (
    AutoscalerOptionsConfig,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)

GROUP = "scalers"
IDLE_TIMEOUT_S = 5

ray_config = RayJobConfig(
    head_node_config=HeadNodeConfig(ray_start_params={"num-cpus": "0"}),
    worker_node_config=[
        WorkerNodeConfig(
            group_name=GROUP,
            replicas=0,
            min_replicas=0,
            max_replicas=2,
            requests=flyray.Resources(cpu="1", memory="1Gi"),
        )
    ],
    enable_autoscaling=True,
    autoscaler_options=AutoscalerOptionsConfig(
        upscaling_mode=AutoscalerOptionsConfig.UpscalingMode.DEFAULT,
        idle_timeout_seconds=IDLE_TIMEOUT_S,
    ),
)

autoscaling_env = flyray.TaskEnvironment(name="autoscaling_env", plugin_config=ray_config)


@ray.remote(num_cpus=0)
class Rendezvous:
    """Lets ``parties`` callers go on only once all of them have arrived."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.everyone = asyncio.Event()

    async def arrive(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.everyone.set()
        await self.everyone.wait()


@ray.remote(num_cpus=1)
def meet(rendezvous) -> str:
    """Hold one CPU until the other task holds one too; the node this ran on."""
    ray.get(rendezvous.arrive.remote())
    return ray.get_runtime_context().get_node_id()


def workers() -> int:
    """The group's alive nodes."""
    return sum(1 for node in ray.nodes() if node["Alive"] and GROUP in node["Resources"])


@autoscaling_env.task
def scale_out_and_in(timeout: float = 180.0) -> dict:
    """0 workers, then 2 (both tasks at once), then 0 again once they were idle long enough."""
    at_start = workers()
    rendezvous = Rendezvous.remote(2)
    nodes = ray.get([meet.remote(rendezvous) for _ in range(2)], timeout=timeout)
    peak = workers()
    ray.kill(rendezvous)
    idle_since = time.monotonic()
    deadline = idle_since + timeout
    while workers() > 0 and time.monotonic() < deadline:
        time.sleep(0.2)  # polls the condition (the nodes gone) until the deadline
    return {
        "at_start": at_start,
        "peak": peak,
        "distinct_nodes": len(set(nodes)),
        "after": workers(),
        "scale_down_s": round(time.monotonic() - idle_since, 1),
    }


@autoscaling_env.task
def hold_two_workers(timeout: float = 180.0) -> None:
    """Keep both workers busy (a third party never arrives) until the caller is killed."""
    rendezvous = Rendezvous.remote(3)
    held = [meet.remote(rendezvous) for _ in range(2)]
    deadline = time.monotonic() + timeout
    while workers() < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # polls the condition (both nodes up) until the deadline
    print(f"holding {workers()} workers until the caller is killed", flush=True)
    ray.get(held)
