"""The spec's existing-cluster example: run on a Ray cluster someone else started.

With ``address`` set, no cluster is created: ``pre()`` connects through the Ray Client.
Point it at your cluster with RAY_CLIENT_ADDRESS (default: the spec's address), then:

    flyray run examples/existing_cluster.py cluster_info
"""

import os

import ray

import flyray
from flyray.plugins.ray import RayJobConfig

existing_cluster_config = RayJobConfig(
    worker_node_config=[],  # No workers needed for existing cluster
    address=os.environ.get("RAY_CLIENT_ADDRESS", "ray://existing-cluster-head:10001"),
)

env = flyray.TaskEnvironment(name="existing_cluster", plugin_config=existing_cluster_config)


@env.task
def cluster_info() -> dict:
    """How many nodes and CPUs the cluster has, and the sum of squares computed on it."""

    @ray.remote
    def square(x: int) -> int:
        return x * x

    return {
        "alive_nodes": sum(1 for node in ray.nodes() if node["Alive"]),
        "cpus": ray.cluster_resources().get("CPU", 0),
        "sum_of_squares": sum(ray.get([square.remote(i) for i in range(10)])),
    }
