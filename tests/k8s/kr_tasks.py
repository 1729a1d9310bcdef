"""Tasks the kuberay tests run as RayJobs (this file travels in the code bundle)."""

import os
import time

import ray

import flyray
from flyray import Resources
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

# Tiny clusters: a 1-CPU head, alone or with one 1-CPU worker.
head_only = flyray.TaskEnvironment(
    name="kr_head",
    plugin_config=RayJobConfig(head_node_config=HeadNodeConfig(requests=Resources(cpu=1))),
)
with_worker = flyray.TaskEnvironment(
    name="kr_pair",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(requests=Resources(cpu=1)),
        worker_node_config=[
            WorkerNodeConfig(group_name="workers", replicas=1, requests=Resources(cpu=1))
        ],
        shutdown_after_job_finishes=True,
        ttl_seconds_after_finished=3,  # the seed says 600: the same fields, a test's patience
    ),
)
never_ready = flyray.TaskEnvironment(
    name="kr_stuck",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(requests=Resources(cpu=1)),
        pre_running_deadline_seconds=3,
    ),
)


@ray.remote
def square(x: int) -> int:
    return x * x


@head_only.task
def sum_of_squares(n: int) -> int:
    print(f"summing {n} squares", flush=True)
    return sum(ray.get([square.remote(i) for i in range(n)]))


@with_worker.task
def seed_like(n: int) -> int:
    """The seed's task on a head and one worker (shutdown + TTL, as the seed declares)."""
    print(f"seed-like task on {len(ray.nodes())} nodes", flush=True)
    return sum(ray.get([square.remote(i) for i in range(n)]))


@head_only.task
def fail_remotely(code: int) -> None:
    raise RuntimeError(f"failed on purpose with code {code}")


@head_only.task(timeout=10)
def sleep_too_long() -> None:
    print("sleeping past the deadline", flush=True)
    time.sleep(300)


@head_only.task
def sleep_long() -> None:
    print("sleeping until stopped", flush=True)
    time.sleep(300)


@head_only.task(retries=1)
def fail_once(marker: str) -> str:
    """Fail on the first attempt (leaving a marker file), succeed on the retry."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    return "second attempt"


@never_ready.task
def never_runs() -> None:
    raise AssertionError("the cluster never becomes ready, so this never runs")


misspelled = flyray.TaskEnvironment(
    name="kr_misspelled",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(
            pod_template={"spec": {"containers": [{"name": "ray-head"}], "nodeSelektor": {}}}
        )
    ),
)


@misspelled.task
def rejected() -> None:
    """Its pod template misspells nodeSelector: the API server's validation refuses it."""


reused = flyray.TaskEnvironment(
    name="kr_reused",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(requests=Resources(cpu=1)), reuse_cluster=True
    ),
)


@reused.task
def driver_node() -> str:
    """The Ray node the driver runs on: the same for every run on a reused cluster."""
    print("running on a reused cluster", flush=True)
    return ray.get_runtime_context().get_node_id()
