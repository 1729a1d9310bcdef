"""GPU types and (request, limit) pairs in a Ray task's cluster: pods, start params, local Ray.

Includes, as flyray's own tests, the GPU assertions of Flyte's Ray-plugin tests
(flyte-sdk plugins/ray/tests/test_task.py): T4 -> nvidia-tesla-t4 on the head, A100 ->
nvidia-tesla-a100 and A10G -> nvidia-a10g on workers, nothing without a GPU type, and
requests merged into a user's pod template keep its args, cpu and memory and add the GPU.
"""

from __future__ import annotations

import json

import pytest

from flyray import ConfigError, PodTemplate, Resources, TaskEnvironment
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
from flyray.plugins.ray.resources import local_ray_resources

GPU_LABEL = "k8s.amazonaws.com/accelerator"


def cluster(config: RayJobConfig, **env_kwargs) -> dict:
    env = TaskEnvironment("gpu_env", plugin_config=config, **env_kwargs)

    @env.task
    def task() -> None:
        pass

    return task.custom_config()["rayClusterSpec"]


def device_values(group: dict, label: str = GPU_LABEL) -> list[str]:
    """The values the group's pods require for ``label``, from affinity and tolerations."""
    spec = group["template"]["spec"]
    affinity = spec.get("affinity", {}).get("nodeAffinity", {})
    terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution", {})
    required = [
        value
        for term in terms.get("nodeSelectorTerms", [])
        for expression in term["matchExpressions"]
        if expression["key"] == label
        for value in expression["values"]
    ]
    tolerated = [t["value"] for t in spec.get("tolerations", []) if t.get("key") == label]
    assert required == tolerated
    return required


def start_resources(group: dict) -> dict:
    text = group["rayStartParams"].get("resources")
    return {} if text is None else json.loads(text.strip("'"))


def wut_template(container_name: str) -> PodTemplate:
    """A template with its own entrypoint and cpu/memory, as in Flyte's plugin tests."""
    return PodTemplate(
        pod_spec={
            "containers": [
                {
                    "name": container_name,
                    "args": ["wut update-aws-credentials-file default"],
                    "resources": {
                        "requests": {"cpu": "15000m", "memory": "45Gi"},
                        "limits": {"cpu": "15000m", "memory": "45Gi"},
                    },
                }
            ]
        }
    )


def test_head_t4():
    spec = cluster(
        RayJobConfig(
            head_node_config=HeadNodeConfig(requests=Resources(cpu=1, gpu="T4:1")),
            worker_node_config=[WorkerNodeConfig(group_name="grp", replicas=1)],
        )
    )
    assert device_values(spec["headGroupSpec"]) == ["nvidia-tesla-t4"]
    assert start_resources(spec["headGroupSpec"]) == {"accelerator_type:T4": 1}
    assert device_values(spec["workerGroupSpecs"][0]) == []


def test_worker_a100():
    spec = cluster(
        RayJobConfig(
            worker_node_config=[
                WorkerNodeConfig(
                    group_name="grp", replicas=2, requests=Resources(cpu=1, gpu="A100:2")
                )
            ]
        )
    )
    worker = spec["workerGroupSpecs"][0]
    assert device_values(worker) == ["nvidia-tesla-a100"]
    assert (
        worker["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    )
    assert start_resources(worker) == {"accelerator_type:A100": 1}


def test_nothing_without_a_gpu_type():
    spec = cluster(
        RayJobConfig(
            head_node_config=HeadNodeConfig(requests=Resources(cpu=1, memory="1Gi")),
            worker_node_config=[
                WorkerNodeConfig(group_name="grp", replicas=1, requests=Resources(cpu=1, gpu=1))
            ],
        )
    )
    for group in (spec["headGroupSpec"], *spec["workerGroupSpecs"]):
        assert device_values(group) == [] and "resources" not in group["rayStartParams"]


@pytest.mark.parametrize(
    ("node", "container", "gpu", "value"),
    [
        ("worker", "ray-worker", "A10G:1", "nvidia-a10g"),
        ("head", "ray-head", "T4:1", "nvidia-tesla-t4"),
    ],
)
def test_requests_merge_into_a_user_pod_template(node, container, gpu, value):
    template = wut_template(container)
    if node == "worker":
        config = RayJobConfig(
            worker_node_config=[
                WorkerNodeConfig(
                    group_name="workers",
                    replicas=2,
                    requests=Resources(gpu=gpu),
                    pod_template=template,
                )
            ]
        )
    else:
        config = RayJobConfig(
            head_node_config=HeadNodeConfig(requests=Resources(gpu=gpu), pod_template=template),
            worker_node_config=[WorkerNodeConfig(group_name="grp", replicas=1)],
        )
    spec = cluster(config)
    group = spec["workerGroupSpecs"][0] if node == "worker" else spec["headGroupSpec"]
    ray = group["template"]["spec"]["containers"][0]
    assert ray["args"] == ["wut update-aws-credentials-file default"]
    assert ray["resources"]["requests"]["cpu"] == "15000m"
    assert ray["resources"]["requests"]["memory"] == "45Gi"
    assert ray["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert device_values(group) == [value]


def test_environment_resources_size_the_head_with_pairs_and_gpu():
    spec = cluster(
        RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="grp", replicas=1)]),
        resources=Resources(cpu=(1, 2), memory=("1Gi", "2Gi"), gpu="L40s:1"),
    )
    head = spec["headGroupSpec"]
    assert head["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "2", "memory": "2Gi", "nvidia.com/gpu": "1"},
    }
    assert device_values(head) == ["nvidia-l40s"]
    assert start_resources(head) == {"accelerator_type:L40S": 1}


def test_pairs_on_nodes_and_errors_name_the_node():
    spec = cluster(
        RayJobConfig(
            worker_node_config=[
                WorkerNodeConfig(group_name="w", replicas=1, requests=Resources(cpu=(1, 2)))
            ]
        )
    )
    resources = spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}
    with pytest.raises(ConfigError) as info:
        cluster(
            RayJobConfig(
                worker_node_config=[
                    WorkerNodeConfig(
                        group_name="w",
                        replicas=1,
                        requests=Resources(cpu=(1, 4)),
                        limits=Resources(cpu=2),
                    )
                ]
            )
        )
    assert info.value.field == "WorkerNodeConfig(group_name='w').limits.cpu"


def test_accelerator_label_setting(monkeypatch):
    monkeypatch.setenv("FLYRAY_ACCELERATOR_LABEL", "cloud.google.com/gke-accelerator")
    spec = cluster(
        RayJobConfig(
            worker_node_config=[
                WorkerNodeConfig(group_name="w", replicas=1, requests=Resources(gpu="T4:1"))
            ]
        )
    )
    worker = spec["workerGroupSpecs"][0]
    assert device_values(worker, "cloud.google.com/gke-accelerator") == ["nvidia-tesla-t4"]
    assert device_values(worker) == []


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ('{"custom": 2}', {"accelerator_type:T4": 1, "custom": 2}),
        ("'{\"custom\": 2}'", {"accelerator_type:T4": 1, "custom": 2}),
        ('"{\\"custom\\": 2}"', {"accelerator_type:T4": 1, "custom": 2}),
        ('{"accelerator_type:T4": 4}', {"accelerator_type:T4": 4}),  # the user's value wins
    ],
)
def test_accelerator_type_joins_the_users_resources_param(user, expected):
    spec = cluster(
        RayJobConfig(
            worker_node_config=[
                WorkerNodeConfig(
                    group_name="w",
                    replicas=1,
                    requests=Resources(gpu="T4:1"),
                    ray_start_params={"resources": user, "num-cpus": 1},
                )
            ]
        )
    )
    params = spec["workerGroupSpecs"][0]["rayStartParams"]
    assert start_resources(spec["workerGroupSpecs"][0]) == expected
    assert params["num-cpus"] == "1"


def test_unreadable_users_resources_param_is_refused():
    with pytest.raises(ConfigError) as info:
        cluster(
            RayJobConfig(
                worker_node_config=[
                    WorkerNodeConfig(
                        group_name="w",
                        replicas=1,
                        requests=Resources(gpu="T4:1"),
                        ray_start_params={"resources": "custom=2"},
                    )
                ]
            )
        )
    assert info.value.field == "WorkerNodeConfig(group_name='w').ray_start_params['resources']"


def test_local_ray_resources_is_the_union_of_the_groups():
    config = RayJobConfig(
        head_node_config=HeadNodeConfig(requests=Resources(gpu="T4:1")),
        worker_node_config=[
            WorkerNodeConfig(group_name="a", replicas=1, requests=Resources(gpu="A100_80G:2")),
            WorkerNodeConfig(group_name="b", replicas=1, limits=Resources(gpu="T4:1")),
            WorkerNodeConfig(group_name="c", replicas=1, requests=Resources(gpu=1)),
        ],
    )
    assert local_ray_resources(config) == {
        "accelerator_type:A100": 1,
        "accelerator_type:A100-80G": 1,
        "accelerator_type:T4": 1,
    }
    plain = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="a", replicas=1)])
    assert local_ray_resources(plain) == {}
    # the environment's resources size a head that names none
    assert local_ray_resources(plain, Resources(gpu="L4:1")) == {"accelerator_type:L4": 1}


def test_accelerator_type_schedules_on_a_local_ray(ray_tmpdir):
    """A real Ray started as local mode would start it: @ray.remote(accelerator_type=T4) runs."""
    ray = pytest.importorskip("ray")
    from ray.util.accelerators import NVIDIA_TESLA_T4

    if ray.is_initialized():
        pytest.skip("this process is already connected to a Ray")
    config = RayJobConfig(
        worker_node_config=[
            WorkerNodeConfig(group_name="gpu", replicas=1, requests=Resources(gpu="T4:1"))
        ]
    )
    ray.init(num_cpus=1, resources=local_ray_resources(config), include_dashboard=False)
    try:

        @ray.remote(accelerator_type=NVIDIA_TESLA_T4)
        def on_t4() -> str:
            return ray.get_runtime_context().get_node_id()

        assert ray.get(on_t4.remote(), timeout=60) == ray.get_runtime_context().get_node_id()
        assert ray.cluster_resources()["accelerator_type:T4"] == 1
    finally:
        ray.shutdown()
