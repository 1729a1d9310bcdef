"""Golden tests for RayFunctionTask.custom_config(): the cluster description KubeRay gets.

Regenerate the files after an intended change with ``UPDATE_GOLDEN=1 pytest tests/plugins``.
"""

import base64
import json
import os
from pathlib import Path

import pytest
import yaml

from flyray import PodTemplate, Resources, TaskEnvironment
from flyray.plugins.ray import (
    AutoscalerOptions,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)

GOLDEN = Path(__file__).parent / "golden"


def spec_example():
    return RayJobConfig(
        head_node_config=HeadNodeConfig(
            requests=Resources(cpu="1", memory="2Gi"), ray_start_params={"log-color": "True"}
        ),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="cpu-workers", replicas=2, requests=Resources(cpu="2", memory="4Gi")
            )
        ],
        shutdown_after_job_finishes=True,
        ttl_seconds_after_finished=600,
    )


def several_groups():
    return RayJobConfig(
        head_node_config=HeadNodeConfig(
            ray_start_params={"num-cpus": 0, "include-dashboard": True}
        ),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="small", replicas=3, requests=Resources(cpu="500m", memory="1Gi")
            ),
            WorkerNodeConfig(
                group_name="big",
                replicas=1,
                requests=Resources(cpu=4, memory="16Gi"),
                limits=Resources(cpu=8, memory="16Gi"),
                ray_start_params={"object-store-memory": 1000000000},
            ),
            WorkerNodeConfig(group_name="empty", replicas=0),
        ],
    )


def autoscaling():
    return RayJobConfig(
        worker_node_config=[
            WorkerNodeConfig(
                group_name="autoscaling-group", replicas=1, min_replicas=1, max_replicas=5
            )
        ],
        enable_autoscaling=True,
        autoscaler_options=AutoscalerOptions(
            upscaling_mode="Aggressive",
            idle_timeout_seconds=120,
            image="rayproject/ray:2.60.0",
            resources=Resources(cpu="500m", memory="512Mi"),
            env={"AUTOSCALER_LOG_LEVEL": "debug"},
            version="v2",
        ),
    )


def gpus():
    return RayJobConfig(
        head_node_config=HeadNodeConfig(requests=Resources(cpu=2, memory="8Gi")),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="gpu-workers",
                replicas=2,
                requests=Resources(cpu=8, memory="32Gi", gpu="A100:2", shm="8Gi"),
            )
        ],
    )


def pod_template_merge():
    template = PodTemplate(
        primary_container_name="main",
        labels={"team": "ml"},
        annotations={"owner": "ada"},
        pod_spec={
            "containers": [
                {"name": "log-shipper", "image": "fluent/fluent-bit:3"},
                {
                    "name": "main",
                    "image": "example.com/ray:custom",
                    "env": [{"name": "MODE", "value": "train"}],
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                },
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "nodeSelector": {"pool": "ray"},
        },
    )
    return RayJobConfig(
        head_node_config=HeadNodeConfig(pod_template=template, requests=Resources(cpu=2)),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="workers",
                replicas=1,
                pod_template={"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}},
                requests=Resources(cpu=1, memory="2Gi"),
            )
        ],
    )


def runtime_env():
    return RayJobConfig(
        worker_node_config=[WorkerNodeConfig(group_name="workers", replicas=1)],
        runtime_env={"pip": ["numpy", "pandas"], "env_vars": {"A": "1", "B": "two"}},
    )


CASES = {
    "spec_example": spec_example,
    "several_groups": several_groups,
    "autoscaling": autoscaling,
    "gpus": gpus,
    "pod_template_merge": pod_template_merge,
    "runtime_env": runtime_env,
}


def custom_config(config, **env_kwargs):
    env = TaskEnvironment("golden_env", plugin_config=config, **env_kwargs)

    @env.task
    def task() -> None:
        pass

    return task.custom_config()


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    rendered = json.dumps(custom_config(CASES[name]()), indent=2, sort_keys=True) + "\n"
    path = GOLDEN / f"custom_config_{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(rendered)
    assert rendered == path.read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_deterministic_and_json_serialisable(name):
    first = json.dumps(custom_config(CASES[name]()))
    assert first == json.dumps(custom_config(CASES[name]()))


def test_ray_containers_come_first_and_are_named():
    cluster = custom_config(pod_template_merge())["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]
    assert [c["name"] for c in head["spec"]["containers"]] == ["ray-head", "log-shipper"]
    ray = head["spec"]["containers"][0]
    # The user's container kept its image, env and mounts; requests overrode cpu, kept memory.
    assert ray["image"] == "example.com/ray:custom"
    assert ray["env"] == [{"name": "MODE", "value": "train"}]
    assert ray["resources"]["requests"] == {"cpu": "2", "memory": "1Gi"}
    assert head["metadata"] == {"annotations": {"owner": "ada"}, "labels": {"team": "ml"}}
    assert head["spec"]["tolerations"][0]["key"] == "gpu"
    worker = cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"]
    assert [c["name"] for c in worker] == ["ray-worker", "sidecar"]


def test_start_params_are_strings():
    cluster = custom_config(several_groups())["rayClusterSpec"]
    assert cluster["headGroupSpec"]["rayStartParams"] == {
        "include-dashboard": "true",
        "num-cpus": "0",
    }
    assert cluster["workerGroupSpecs"][1]["rayStartParams"] == {"object-store-memory": "1000000000"}


def test_replica_bounds_always_written():
    groups = custom_config(several_groups())["rayClusterSpec"]["workerGroupSpecs"]
    assert [(g["replicas"], g["minReplicas"], g["maxReplicas"]) for g in groups] == [
        (3, 3, 3),
        (1, 1, 1),
        (0, 0, 0),
    ]


def test_gpu_limits_and_shared_memory():
    worker = custom_config(gpus())["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    container = worker["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert {"mountPath": "/dev/shm", "name": "shared-mem"} in container["volumeMounts"]
    assert worker["volumes"] == [
        {"emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}, "name": "shared-mem"}
    ]


def test_runtime_env_twice_decodes_to_the_input():
    config = runtime_env()
    rendered = custom_config(config)
    assert json.loads(base64.b64decode(rendered["runtimeEnv"])) == config.runtime_env
    assert yaml.safe_load(rendered["runtimeEnvYAML"]) == config.runtime_env


def test_head_takes_environment_resources_and_image():
    rendered = custom_config(
        RayJobConfig(worker_node_config=[]),
        resources=Resources(cpu=3, memory="6Gi"),
        image="example.com/flyray:1",
    )
    head = rendered["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["resources"] == {
        "limits": {"cpu": "3", "memory": "6Gi"},
        "requests": {"cpu": "3", "memory": "6Gi"},
    }
    assert head["image"] == "example.com/flyray:1"
    assert "runtimeEnv" not in rendered and "ttlSecondsAfterFinished" not in rendered
