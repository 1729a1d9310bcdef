"""The local-cluster executor's nodes carry a GPU type's accelerator_type resource.

The executor reads the rendered RayJob, never the Python config: a group whose resources name
a GPU type gets ``accelerator_type:<TYPE>`` in its rayStartParams, which ``cluster_nodes``
turns into the node's ``ray start --resources``. Pure: no Ray process starts.
"""

from __future__ import annotations

import json

from flyray import Resources, TaskEnvironment
from flyray.executors.localcluster.topology import GROUP_RESOURCE_UNITS, cluster_nodes
from flyray.manifest.rayjob import render_rayjob
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
from flyray.plugins.ray.request import ray_request

env = TaskEnvironment(
    "topology_gpus",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(requests=Resources(cpu=(1, 2), memory=("1Gi", "2Gi"))),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="gpus",
                replicas=2,
                requests=Resources(cpu=1, gpu="A100_80G:2"),
                ray_start_params={"resources": '{"custom": 3}'},
            )
        ],
    ),
)


@env.task
def task() -> None:
    pass


def test_gpu_type_becomes_the_nodes_accelerator_type_resource() -> None:
    manifest = render_rayjob(
        ray_request(task),
        run_id="r0123456789",
        image="rayproject/ray:2.60.0-py311",
        ray_version="2.60.0",
        entrypoint=["python", "-m", "flyray.entrypoint"],
    )
    head, workers = cluster_nodes(manifest)
    # the head's (request, limit) pairs: Ray is sized from the limits, as KubeRay does
    assert (head.num_cpus, head.memory, head.resources) == (2, 2 * 2**30, {})
    assert len(workers) == 2
    for node in workers:
        assert node.num_gpus == 2
        assert node.resources == {
            "accelerator_type:A100": 1,
            "accelerator_type:A100-80G": 1,
            "custom": 3,
            "gpus": GROUP_RESOURCE_UNITS,
        }
        flag = next(f for f in node.flags() if f.startswith("--resources="))
        assert json.loads(flag.removeprefix("--resources="))["accelerator_type:A100-80G"] == 1
