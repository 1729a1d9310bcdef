"""Tasks the realkube tests run as RayJobs (this file travels in the code bundle)."""

import time

import ray

import flyray
from flyray import Resources, Secret
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

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
