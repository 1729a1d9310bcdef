"""cluster_nodes: the Ray nodes of a RayJob manifest, derived the way the KubeRay operator does.

Pure unit tests on hand-written manifest dicts (no Ray process starts), plus the spec's example
rendered by the real renderer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flyray.errors import ManifestError
from flyray.executors.localcluster.raystart import NodeSpec
from flyray.executors.localcluster.topology import GROUP_RESOURCE_UNITS, cluster_nodes
from flyray.manifest.labels import GROUP_LABEL

GIB = 2**30
SEED = Path(__file__).resolve().parents[3] / "examples" / "seed.py"


# -- hand-written manifests ----------------------------------------------------------------


def group(
    *,
    limits: dict[str, str] | None = None,
    requests: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A head or worker group spec whose Ray container (containers[0]) has these resources."""
    resources: dict[str, Any] = {}
    if limits is not None:
        resources["limits"] = limits
    if requests is not None:
        resources["requests"] = requests
    containers = [
        {"name": "ray", "image": "rayproject/ray:2.60.0", "resources": resources},
        {"name": "sidecar", "image": "busybox", "resources": {"limits": {"cpu": "9"}}},
    ]
    return {
        "rayStartParams": params or {},
        "template": {"spec": {"containers": containers}},
        **fields,
    }


def worker(name: str, replicas: int = 1, **kwargs: Any) -> dict[str, Any]:
    """A worker group named ``name`` with ``replicas`` (min 0, max 10) and a 1-CPU container."""
    kwargs.setdefault("limits", {"cpu": "1"})
    return group(groupName=name, replicas=replicas, minReplicas=0, maxReplicas=10, **kwargs)


def rayjob(head: dict[str, Any], *workers: dict[str, Any]) -> dict[str, Any]:
    """A RayJob manifest with this head group and these worker groups."""
    cluster = {"rayVersion": "2.60.0", "headGroupSpec": head, "workerGroupSpecs": list(workers)}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": "r0123456789"},
        "spec": {"entrypoint": "python -m flyray.entrypoint", "rayClusterSpec": cluster},
    }


def head_of(**kwargs: Any) -> NodeSpec:
    """The head NodeSpec of a manifest whose head group is ``group(**kwargs)``."""
    head, _ = cluster_nodes(rayjob(group(**kwargs)))
    return head


def only_worker(**kwargs: Any) -> NodeSpec:
    """The single NodeSpec of a one-replica worker group ``worker("w", **kwargs)``."""
    _, workers = cluster_nodes(rayjob(group(limits={"cpu": "1"}), worker("w", **kwargs)))
    assert len(workers) == 1
    return workers[0]


# -- CPUs, memory, GPUs from the Ray container ---------------------------------------------


@pytest.mark.parametrize(
    ("limits", "requests", "cpus"),
    [
        ({"cpu": "500m"}, None, 1),
        ({"cpu": "1500m"}, None, 2),
        ({"cpu": "2"}, None, 2),
        ({"cpu": 3}, None, 3),
        ({"cpu": "2"}, {"cpu": "1"}, 2),  # the limit wins over the request
        ({}, {"cpu": "1500m"}, 2),  # no limit: the request
        (None, {"cpu": "250m"}, 1),
        ({"cpu": "0"}, {"cpu": "3"}, 3),  # a zero limit counts as none (KubeRay's IsZero)
        (None, None, None),  # neither: Ray detects the CPUs itself
    ],
)
def test_cpus_come_from_the_limit_else_the_request_rounded_up(
    limits: dict[str, Any] | None, requests: dict[str, Any] | None, cpus: int | None
) -> None:
    assert head_of(limits=limits, requests=requests).num_cpus == cpus


def test_only_the_first_container_counts() -> None:
    # group() adds a sidecar with a 9-CPU limit after the Ray container
    assert head_of(limits={"cpu": "1"}).num_cpus == 1
    assert head_of().num_cpus is None


@pytest.mark.parametrize(
    ("limits", "requests", "memory"),
    [
        ({"memory": "2Gi"}, None, 2 * GIB),
        ({"memory": "512Mi"}, {"memory": "256Mi"}, 512 * 2**20),
        ({"memory": "1G"}, None, 10**9),
        (None, {"memory": "2Gi"}, None),  # a request alone sets no memory
        ({"cpu": "1"}, {"memory": "2Gi"}, None),
        ({"memory": "0"}, None, None),
    ],
)
def test_memory_comes_from_the_limit_only(
    limits: dict[str, Any] | None, requests: dict[str, Any] | None, memory: int | None
) -> None:
    assert head_of(limits=limits, requests=requests).memory == memory


@pytest.mark.parametrize(
    ("limits", "gpus"),
    [
        ({"nvidia.com/gpu": "1"}, 1),
        ({"amd.com/gpu": "2", "cpu": "4"}, 2),
        ({"gpu": "1"}, 1),
        ({"nvidia.com/gpu": "0"}, None),  # zero: KubeRay sets nothing
        ({"cpu": "4", "memory": "1Gi"}, None),
        ({"example.com/gpus": "1"}, None),  # must END in "gpu"
    ],
)
def test_gpus_come_from_any_limit_ending_in_gpu(limits: dict[str, str], gpus: int | None) -> None:
    assert head_of(limits=limits).num_gpus == gpus


def test_a_gpu_request_alone_sets_no_gpus() -> None:
    assert head_of(requests={"nvidia.com/gpu": "1"}).num_gpus is None


# -- rayStartParams ------------------------------------------------------------------------


def test_ray_start_params_win_over_the_container() -> None:
    head = head_of(
        limits={"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "2"},
        params={"num-cpus": "1", "num-gpus": "1", "memory": "1073741824"},
    )
    assert (head.num_cpus, head.num_gpus, head.memory) == (1, 1, GIB)
    assert head.params == {}  # consumed into the typed fields, not passed twice


def test_a_zero_param_still_wins() -> None:
    # num-cpus "0" on the head is how KubeRay users keep work off the head
    head = head_of(
        limits={"cpu": "2", "nvidia.com/gpu": "1"}, params={"num-cpus": "0", "num-gpus": "0"}
    )
    assert (head.num_cpus, head.num_gpus) == (0, 0)
    assert "--num-cpus=0" in head.flags()


def test_other_params_pass_through() -> None:
    head = head_of(params={"log-color": "True", "object-store-memory": "100000000"})
    assert head.params == {"log-color": "True", "object-store-memory": "100000000"}
    assert "--object-store-memory=100000000" in head.flags()


@pytest.mark.parametrize(
    "text",
    [
        '"{\\"custom\\": 1}"',  # YAML '"{\"custom\": 1}"': the quoting KubeRay's docs show
        '{"custom": 1}',
        "'{\"custom\": 1}'",
        '  {"custom": 1}  ',
    ],
)
def test_a_quoted_json_resources_param_is_merged_with_the_group_resource(text: str) -> None:
    node = only_worker(params={"resources": text})
    assert node.resources == {"custom": 1, "w": GROUP_RESOURCE_UNITS}
    assert head_of(params={"resources": text}).resources == {"custom": 1}


@pytest.mark.parametrize("text", ['"{\\"custom\\": 1', "{custom: 1}", '"[1, 2]"', "'a' 'b'"])
def test_a_bad_resources_param_is_a_manifest_error(text: str) -> None:
    with pytest.raises(ManifestError, match="rayStartParams"):
        head_of(params={"resources": text})


def test_labels_param() -> None:
    head = head_of(params={"labels": "zone=a, tier=gpu"})
    assert head.labels == {"zone": "a", "tier": "gpu"}
    assert head.params == {}
    node = only_worker(params={"labels": "zone=b"})
    assert node.labels == {"zone": "b", GROUP_LABEL: "w"}


# -- replicas and names --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "count"),
    [
        ({"replicas": 2, "minReplicas": 0}, 2),
        ({"replicas": 1, "minReplicas": 3}, 3),  # max(replicas, minReplicas)
        ({"replicas": 0, "minReplicas": 0}, 0),
        ({"replicas": 2, "minReplicas": 1, "numOfHosts": 2}, 4),  # numOfHosts multiplies
        ({"minReplicas": 1, "numOfHosts": 3}, 3),  # replicas absent
    ],
)
def test_replicas(fields: dict[str, int], count: int) -> None:
    spec = group(groupName="g", maxReplicas=10, limits={"cpu": "1"})
    spec.update(fields)
    _, workers = cluster_nodes(rayjob(group(), spec))
    assert [w.name for w in workers] == [f"g-{i}" for i in range(count)]


def test_every_worker_is_named_after_its_group_and_carries_it() -> None:
    head, workers = cluster_nodes(
        rayjob(group(limits={"cpu": "1"}), worker("cpu", 2), worker("gpu", 1))
    )
    assert head.name == "head" and head.head
    assert head.resources == {} and head.labels == {}  # the head has no group
    assert [w.name for w in workers] == ["cpu-0", "cpu-1", "gpu-0"]
    for node in workers:
        group_name = node.name.rsplit("-", 1)[0]
        assert not node.head
        assert node.resources == {group_name: GROUP_RESOURCE_UNITS}
        assert node.labels == {GROUP_LABEL: group_name}


def test_no_worker_groups() -> None:
    manifest = rayjob(group(limits={"cpu": "1"}))
    del manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert cluster_nodes(manifest)[1] == []


# -- malformed manifests -------------------------------------------------------------------


@pytest.mark.parametrize(
    "manifest",
    [
        {},
        {"spec": {}},
        {"spec": {"clusterSelector": {"ray.io/cluster": "existing"}}},
        {"spec": {"rayClusterSpec": {}}},
    ],
)
def test_a_manifest_without_a_cluster_spec_is_a_manifest_error(manifest: dict[str, Any]) -> None:
    with pytest.raises(ManifestError, match="rayClusterSpec"):
        cluster_nodes(manifest)


def test_a_group_without_containers_is_a_manifest_error() -> None:
    bad = worker("w")
    bad["template"]["spec"]["containers"] = []
    with pytest.raises(ManifestError, match="no containers"):
        cluster_nodes(rayjob(group(), bad))


# -- the spec's example --------------------------------------------------------------------


def test_the_seed_example_gives_a_head_and_two_cpu_workers() -> None:
    from flyray.manifest.rayjob import render_rayjob
    from flyray.plugins.ray.request import ray_request
    from flyray.task.loader import load_task

    task = load_task(str(SEED), "my_ray_task")
    manifest = render_rayjob(
        ray_request(task),
        run_id="r0123456789",
        image="rayproject/ray:2.60.0-py311",
        ray_version="2.60.0",
        entrypoint=["python", "-m", "flyray.entrypoint"],
    )
    head, workers = cluster_nodes(manifest)
    assert (head.name, head.head, head.num_cpus, head.memory) == ("head", True, 1, 2 * GIB)
    assert head.num_gpus is None
    assert [w.name for w in workers] == ["cpu-workers-0", "cpu-workers-1"]
    for node in workers:
        assert (node.num_cpus, node.memory, node.num_gpus) == (2, 4 * GIB, None)
        assert node.resources == {"cpu-workers": GROUP_RESOURCE_UNITS}
        assert node.labels == {GROUP_LABEL: "cpu-workers"}
