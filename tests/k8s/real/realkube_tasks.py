"""Tasks the realkube tests run as RayJobs (this file travels in the code bundle)."""

import time

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

import flyray
from flyray import Resources, Secret
from flyray.plugins.ray import (
    AutoscalerOptionsConfig,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)

head_only = flyray.TaskEnvironment(
    name="rk_head",
    plugin_config=RayJobConfig(head_node_config=HeadNodeConfig(requests=Resources(cpu=1))),
)
misspelled = flyray.TaskEnvironment(
    name="rk_misspelled",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(
            pod_template={"spec": {"containers": [{"name": "ray-head"}], "nodeSelektor": {}}}
        )
    ),
)

# For the real operator (level 2): a head and one worker group, each with its own ray start
# parameters and resources, and a secret; the worker's num-cpus and memory are left to KubeRay.
on_operator = flyray.TaskEnvironment(
    name="rk_operator",
    secrets=[Secret(key="api-key", group="rk-credentials")],
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(
            ray_start_params={"num-cpus": 1, "disable-usage-stats": True},
            requests=Resources(cpu=1, memory="2Gi"),
            limits=Resources(cpu=2, memory="2Gi"),
        ),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="workers",
                replicas=1,
                ray_start_params={
                    "object-store-memory": 100_000_000,
                    "metrics-export-port": 9090,
                    "disable-usage-stats": False,
                },
                requests=Resources(cpu="500m", memory="1Gi", shm="256Mi"),
            )
        ],
    ),
)


@ray.remote
def square(x: int) -> int:
    return x * x


@head_only.task
def sum_of_squares(n: int) -> int:
    print(f"summing {n} squares", flush=True)
    return sum(ray.get([square.remote(i) for i in range(n)]))


@head_only.task
def fail_remotely(code: int) -> None:
    raise RuntimeError(f"failed on purpose with code {code}")


@head_only.task
def sleep_long() -> None:
    print("sleeping until stopped", flush=True)
    time.sleep(300)


@misspelled.task
def rejected() -> None:
    """Its pod template misspells nodeSelector: the API server's strict validation refuses it."""


@on_operator.task
def cluster_sum(n: int) -> int:
    """Created for the real operator; its pods never run (level 2), so neither does this."""
    return sum(ray.get([square.remote(i) for i in range(n)]))


# A head whose PATH has no `ray`: its container exits at once (level 3), as with an image
# that lacks Ray, or a virtualenv the pod cannot see.
no_ray = flyray.TaskEnvironment(
    name="rk_no_ray",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(
            requests=Resources(cpu=1),
            pod_template={
                "spec": {
                    "containers": [
                        {"name": "ray-head", "env": [{"name": "PATH", "value": "/nonexistent"}]}
                    ]
                }
            },
        )
    ),
)


@no_ray.task
def ray_not_found() -> None:
    """Never runs: its head cannot start Ray."""


@head_only.task
def where_it_runs() -> dict:
    """The driver's Python, where its flyray came from, and whether that Python has its own."""
    import subprocess
    import sys

    plain = subprocess.run(
        [sys.executable, "-c", "import flyray"],
        env={"PATH": "/usr/bin:/bin"},  # no PYTHONPATH, so no shipped py_modules: the venv alone
        capture_output=True,
        check=False,
    )
    return {
        "python": sys.executable,
        "flyray": flyray.__file__,
        "venv_has_flyray": plain.returncode == 0,
    }


# KubeRay's autoscaler (level 3): a head that runs no task (num-cpus 0) and a group that
# starts empty, may grow to two one-CPU workers and gives back a worker idle for 5 s. Ray's
# autoscaler drains an idle node first (the task sees it go), then asks Kubernetes to delete
# its pod: the cluster is kept after the job so that the test sees the pods go too.
autoscaled = flyray.TaskEnvironment(
    name="rk_autoscaled",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(
            ray_start_params={"num-cpus": 0}, requests=Resources(cpu=1, memory="2Gi")
        ),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="burst",
                replicas=0,
                min_replicas=0,
                max_replicas=2,
                requests=Resources(cpu=1, memory="1Gi"),
            )
        ],
        enable_autoscaling=True,
        autoscaler_options=AutoscalerOptionsConfig(idle_timeout_seconds=5),
        shutdown_after_job_finishes=True,
        ttl_seconds_after_finished=120,  # the cluster outlives the job: its scale-down is seen
    ),
)


def _workers() -> int:
    """Alive Ray nodes other than the head."""
    return sum(
        1
        for node in ray.nodes()
        if node["Alive"] and "node:__internal_head__" not in node["Resources"]
    )


@ray.remote(num_cpus=1)
def _node_of_bundle() -> str:
    return ray.get_runtime_context().get_node_id()


@autoscaled.task
def scale_out_and_back(timeout_s: float = 240.0) -> list[int]:
    """Workers seen at the start, while two one-CPU tasks run at once (a placement group
    spread over two nodes: both workers must be up together), and once they are idle."""
    seen = [_workers()]
    group = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    ray.get(group.ready(), timeout=timeout_s)
    nodes = ray.get(
        [
            _node_of_bundle.options(
                scheduling_strategy=PlacementGroupSchedulingStrategy(group, index)
            ).remote()
            for index in range(2)
        ]
    )
    assert len(set(nodes)) == 2, nodes
    seen.append(_workers())
    remove_placement_group(group)
    deadline = time.monotonic() + timeout_s
    while _workers() > 0:  # the autoscaler gives idle workers back after 5 s
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_workers()} workers still up after {timeout_s} s idle")
        time.sleep(0.5)
    seen.append(_workers())
    print(f"workers: {seen}", flush=True)
    return seen
