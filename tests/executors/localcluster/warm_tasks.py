"""Tasks that the warm-cluster tests run as Ray jobs: each says which Ray nodes it saw."""

import ray

import flyray
from flyray import Resources
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig


def seed_config(replicas: int) -> RayJobConfig:
    """The seed's cluster (examples/seed.py) with ``replicas`` workers, without its TTL."""
    return RayJobConfig(
        head_node_config=HeadNodeConfig(
            requests=Resources(cpu="1", memory="2Gi"), ray_start_params={"log-color": "True"}
        ),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="cpu-workers",
                replicas=replicas,
                requests=Resources(cpu="2", memory="4Gi"),
            )
        ],
    )


# Named like the seed's environment, so the seed's warm cluster ('ray-env') is theirs too.
seed_env = flyray.TaskEnvironment(name="ray_env", plugin_config=seed_config(replicas=2))
one_worker_env = flyray.TaskEnvironment(name="ray_env", plugin_config=seed_config(replicas=1))
small_env = flyray.TaskEnvironment(
    name="small",
    plugin_config=RayJobConfig(head_node_config=HeadNodeConfig(requests=Resources(cpu=1))),
)


def _nodes() -> dict:
    """The alive nodes of the cluster and the node of the job's driver."""
    alive = sorted(node["NodeID"] for node in ray.nodes() if node["Alive"])
    return {"nodes": alive, "driver": ray.get_runtime_context().get_node_id()}


@seed_env.task
def seed_nodes() -> dict:
    return _nodes()


@one_worker_env.task
def one_worker_nodes() -> dict:
    return _nodes()


@small_env.task
def small_nodes() -> dict:
    return _nodes()


reused_env = flyray.TaskEnvironment(
    name="reused",
    plugin_config=RayJobConfig(head_node_config=HeadNodeConfig(requests=Resources(cpu=1))),
    reusable=flyray.ReusePolicy(replicas=1, idle_ttl=45),
)


@reused_env.task
def reused_nodes() -> dict:
    return _nodes()
