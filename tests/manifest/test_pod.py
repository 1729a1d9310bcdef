"""Pod templates of Ray nodes: requests/limits from Flyte's pairs, GPU keys and GPU scheduling."""

from __future__ import annotations

import pytest

from flyray import GPU, TPU, ConfigError, PodTemplate, Resources
from flyray.manifest.pod import (
    add_accelerator_scheduling,
    pod_spec_from_resources,
    ray_pod_template,
    resource_requirements,
    split_requests_limits,
)

GPU_LABEL = "k8s.amazonaws.com/accelerator"
PARTITION_LABEL = "k8s.amazonaws.com/gpu-partition-size"


# -- (request, limit) pairs -----------------------------------------------------------------


def test_pair_in_requests_gives_request_and_limit():
    out = resource_requirements(Resources(cpu=(1, 2), memory=("1Gi", "2Gi"), disk="5Gi"), None)
    assert out == {
        "requests": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "5Gi"},
        "limits": {"cpu": "2", "memory": "2Gi", "ephemeral-storage": "5Gi"},
    }


def test_pair_in_limits_means_the_same():
    out = resource_requirements(None, Resources(cpu=("500m", 1)))
    assert out == {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}}


def test_pair_next_to_explicit_limits():
    out = resource_requirements(Resources(cpu=(1, 2)), Resources(memory="4Gi"))
    assert out == {"requests": {"cpu": "1"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    # the same limit given twice is fine when it agrees
    same = resource_requirements(Resources(cpu=(1, 2)), Resources(cpu="2000m"))
    assert same["limits"] == {"cpu": "2"}


def test_without_pairs_nothing_changes():
    assert resource_requirements(Resources(cpu=1, memory="1Gi"), None) == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert resource_requirements(Resources(cpu=1), Resources(cpu=2, memory="1Gi")) == {
        "requests": {"cpu": "1"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }


@pytest.mark.parametrize(
    ("requests", "limits", "field", "rule"),
    [
        (Resources(cpu=(1, 4)), Resources(cpu=2), "node.limits.cpu", "give each request"),
        (Resources(cpu=3), Resources(cpu=(1, 4)), "node.limits.cpu", "give each request"),
        (Resources(memory="4Gi"), Resources(memory="2Gi"), "node.requests.memory", "Kubernetes"),
        (None, None, None, None),
    ],
)
def test_conflicts_and_requests_above_limits(requests, limits, field, rule):
    if field is None:
        assert split_requests_limits(requests, limits) == (None, None)
        return
    with pytest.raises(ConfigError) as info:
        split_requests_limits(requests, limits, where="node")
    assert info.value.field == field
    assert rule in info.value.rule


def test_gpu_type_must_match_between_requests_and_limits():
    with pytest.raises(ConfigError) as info:
        split_requests_limits(Resources(gpu="T4:1"), Resources(gpu="A100:1"), where="node")
    assert info.value.field == "node.limits.gpu"
    assert "equal to requests" in info.value.rule


def test_flytes_pod_spec_from_resources_signature_and_vendor_keys():
    spec = pod_spec_from_resources(
        primary_container_name="primary", requests=Resources(gpu="MI300X:1")
    )
    assert spec["containers"][0]["resources"] == {
        "requests": {"amd.com/gpu": "1"},
        "limits": {"amd.com/gpu": "1"},
    }
    mig = pod_spec_from_resources(
        primary_container_name="p",
        requests=Resources(gpu=1),
        k8s_gpu_resource_key="nvidia.com/mig-1g.5gb",
    )
    assert mig["containers"][0]["resources"]["limits"] == {"nvidia.com/mig-1g.5gb": "1"}


# -- GPU scheduling ---------------------------------------------------------------------------


def _expressions(spec):
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return [term["matchExpressions"] for term in terms["nodeSelectorTerms"]]


def _toleration(key, value):
    return {"effect": "NoSchedule", "key": key, "operator": "Equal", "value": value}


def test_gpu_type_adds_affinity_and_toleration():
    template = ray_pod_template(container_name="ray-worker", requests=Resources(gpu="T4:1"))
    spec = template["spec"]
    assert _expressions(spec) == [
        [{"key": GPU_LABEL, "operator": "In", "values": ["nvidia-tesla-t4"]}]
    ]
    assert spec["tolerations"] == [_toleration(GPU_LABEL, "nvidia-tesla-t4")]
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}


def test_partition_adds_the_partition_label_too():
    spec = ray_pod_template(
        container_name="ray-worker",
        requests=Resources(gpu=GPU("A100", 1, "1g.5gb")),
        device_label="cloud.google.com/gke-accelerator",
        partition_label="cloud.google.com/gke-gpu-partition-size",
    )["spec"]
    assert _expressions(spec) == [
        [
            {
                "key": "cloud.google.com/gke-accelerator",
                "operator": "In",
                "values": ["nvidia-tesla-a100"],
            },
            {
                "key": "cloud.google.com/gke-gpu-partition-size",
                "operator": "In",
                "values": ["1g.5gb"],
            },
        ]
    ]
    assert spec["tolerations"] == [
        _toleration("cloud.google.com/gke-accelerator", "nvidia-tesla-a100"),
        _toleration("cloud.google.com/gke-gpu-partition-size", "1g.5gb"),
    ]


def test_tpu_uses_gkes_tpu_labels():
    spec = ray_pod_template(container_name="ray-worker", requests=Resources(gpu=TPU("V5E", "2x2")))[
        "spec"
    ]
    assert _expressions(spec) == [
        [
            {
                "key": "cloud.google.com/gke-tpu-accelerator",
                "operator": "In",
                "values": ["tpu-v5-lite-podslice"],
            },
            {"key": "cloud.google.com/gke-tpu-topology", "operator": "In", "values": ["2x2"]},
        ]
    ]
    assert spec["containers"][0]["resources"]["limits"] == {"google.com/tpu": "1"}


@pytest.mark.parametrize(
    ("gpu", "key", "value"),
    [
        ("Trn1:1", "aws.amazon.com/neuron", "aws-neuron-trn1"),
        ("MI300X:1", "amd.com/gpu", "amd-mi300x"),
        ("Gaudi1:1", "habana.ai/gaudi", "habana-gaudi-dl1"),
        ("A10G:1", "nvidia.com/gpu", "nvidia-a10g"),
        ("T4 shared:1", "nvidia.com/gpu", "nvidia-tesla-t4-shared"),
    ],
)
def test_vendor_keys_and_label_values(gpu, key, value):
    spec = ray_pod_template(container_name="ray-worker", requests=Resources(gpu=gpu))["spec"]
    assert spec["containers"][0]["resources"]["requests"] == {key: "1"}
    assert spec["tolerations"] == [_toleration(GPU_LABEL, value)]


def test_no_scheduling_without_a_gpu_type():
    for requests in (Resources(cpu=1), Resources(gpu=2), None):
        spec = ray_pod_template(container_name="ray-head", requests=requests)["spec"]
        assert "affinity" not in spec and "tolerations" not in spec


def test_user_affinity_terms_each_get_the_gpu_requirement():
    template = PodTemplate(
        pod_spec={
            "containers": [{"name": "ray-worker"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["a"]}
                                ]
                            },
                            {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["b"]}
                                ]
                            },
                        ]
                    }
                }
            },
            "tolerations": [{"key": "spot", "operator": "Exists"}],
        }
    )
    spec = ray_pod_template(
        container_name="ray-worker", requests=Resources(gpu="T4:1"), pod_template=template
    )["spec"]
    gpu = {"key": GPU_LABEL, "operator": "In", "values": ["nvidia-tesla-t4"]}
    assert [exprs[-1] for exprs in _expressions(spec)] == [gpu, gpu]
    assert [exprs[0]["values"] for exprs in _expressions(spec)] == [["a"], ["b"]]
    assert spec["tolerations"] == [
        {"key": "spot", "operator": "Exists"},
        _toleration(GPU_LABEL, "nvidia-tesla-t4"),
    ]


def test_scheduling_is_not_added_twice():
    spec = {"containers": [{"name": "ray"}]}
    for _ in range(2):
        add_accelerator_scheduling(spec, GPU("T4", 1))
    assert len(_expressions(spec)[0]) == 1 and len(spec["tolerations"]) == 1


@pytest.mark.parametrize(
    ("gpu", "rule"),
    [("AppleSilicon", "no Kubernetes node"), ("RTX 4090:1", "valid Kubernetes label value")],
)
def test_devices_no_node_can_be_selected_for_are_refused(gpu, rule):
    with pytest.raises(ConfigError) as info:
        ray_pod_template(container_name="ray-worker", requests=Resources(gpu=gpu), where="node")
    assert info.value.field == "node.gpu"
    assert rule in info.value.rule
