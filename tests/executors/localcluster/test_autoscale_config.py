"""The RayCluster spec -> Ray's autoscaling config, as KubeRay's autoscaler maps it."""

import copy
import os
from pathlib import Path

import pytest

import flyray
from flyray.errors import ManifestError
from flyray.executors.localcluster.autoscale.config import (
    HEAD_NODE_TYPE,
    PROVIDER_MODULE,
    autoscaling_enabled,
    autoscaling_plan,
    node_spec_from_dict,
)
from flyray.executors.localcluster.from_manifest import new_cluster
from flyray.manifest.labels import GROUP_LABEL
from flyray.plugins.ray import (
    AutoscalerOptionsConfig,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)
from flyray.task.environment import TaskEnvironment


def manifest(groups, *, options=None, head_params=None, autoscaling=True):
    spec = {
        "enableInTreeAutoscaling": autoscaling,
        "headGroupSpec": {
            "rayStartParams": head_params if head_params is not None else {"num-cpus": "0"},
            "template": {"spec": {"containers": [{"name": "ray-head"}]}},
        },
        "workerGroupSpecs": groups,
    }
    if options is not None:
        spec["autoscalerOptions"] = options
    return {"spec": {"rayClusterSpec": spec}}


def group(name="cpu", *, replicas=0, low=0, high=2, params=None, resources=None, **extra):
    container = {"name": "ray-worker"}
    if resources is not None:
        container["resources"] = resources
    return {
        "groupName": name,
        "replicas": replicas,
        "minReplicas": low,
        "maxReplicas": high,
        "rayStartParams": params or {},
        "template": {"spec": {"containers": [container]}},
        **extra,
    }


def config_of(rayjob, temp_dir="/tmp/flyray-x"):
    plan = autoscaling_plan(rayjob)
    return plan.config(gcs_address="127.0.0.1:1234", temp_dir=Path(temp_dir), cluster_name="c")


def test_groups_become_node_types_with_their_bounds_resources_and_labels():
    resources = {"limits": {"cpu": "1500m", "memory": "2Gi"}, "requests": {"cpu": "1"}}
    config = config_of(manifest([group(low=1, high=3, resources=resources)]))

    worker = config["available_node_types"]["cpu"]
    assert worker["min_workers"] == 1 and worker["max_workers"] == 3
    # CPUs from the limit rounded up, memory from the limit, the group's resource and label
    assert worker["resources"] == {"CPU": 2, "memory": 2 * 2**30, "cpu": 1000}
    assert worker["labels"] == {GROUP_LABEL: "cpu"}
    head = config["available_node_types"][HEAD_NODE_TYPE]
    assert head["min_workers"] == head["max_workers"] == 0
    assert head["resources"] == {"CPU": 0}
    assert config["head_node_type"] == HEAD_NODE_TYPE
    assert config["max_workers"] == 3


def test_ray_start_params_win_over_the_container_resources():
    params = {"num-cpus": "3", "num-gpus": "1", "memory": "1000", "resources": '{"disk": 2}'}
    resources = {"limits": {"cpu": "8", "memory": "8Gi"}}
    config = config_of(manifest([group(params=params, resources=resources)]))

    assert config["available_node_types"]["cpu"]["resources"] == {
        "CPU": 3,
        "GPU": 1,
        "memory": 1000,
        "disk": 2,
        "cpu": 1000,
    }


def test_the_node_config_carries_the_node_the_provider_starts():
    rayjob = manifest([group(params={"num-cpus": "1", "labels": "zone=a"})])
    node_config = config_of(rayjob)["available_node_types"]["cpu"]["node_config"]

    spec = node_spec_from_dict(node_config["flyray_node"], name="cpu-a1")
    assert spec.name == "cpu-a1" and not spec.head
    assert spec.num_cpus == 1
    assert spec.labels == {"zone": "a", GROUP_LABEL: "cpu"}
    assert spec.resources == {"cpu": 1000}


@pytest.mark.parametrize(
    ("mode", "speed"),
    [("Conservative", 1), ("Default", 1000), ("Aggressive", 1000), (None, 1000)],
)
def test_upscaling_mode_is_the_upscaling_speed(mode, speed):
    options = {"upscalingMode": mode} if mode else {}
    assert config_of(manifest([group()], options=options))["upscaling_speed"] == speed


def test_idle_timeouts_of_the_cluster_and_of_a_group():
    groups = [group(), group("b", idleTimeoutSeconds=7)]
    rayjob = manifest(groups, options={"idleTimeoutSeconds": 5})
    config = config_of(rayjob)

    assert config["idle_timeout_minutes"] == pytest.approx(5 / 60)
    assert "idle_timeout_s" not in config["available_node_types"]["cpu"]
    assert config["available_node_types"]["b"]["idle_timeout_s"] == 7.0
    assert config_of(manifest([group()]))["idle_timeout_minutes"] == 1.0  # KubeRay's default


def test_num_of_hosts_multiplies_the_bounds_and_replicas_are_clamped():
    plan = autoscaling_plan(manifest([group(replicas=5, low=1, high=2, numOfHosts=2)]))
    (only,) = plan.groups
    assert (only.min_workers, only.max_workers, only.replicas) == (2, 4, 4)
    (low,) = autoscaling_plan(manifest([group(replicas=0, low=1, high=2)])).groups
    assert low.replicas == 1


def test_a_group_without_cpus_gets_this_machines_count_on_its_nodes_too():
    (only,) = autoscaling_plan(manifest([group()])).groups
    assert only.template.num_cpus == os.cpu_count()
    assert only.node_type()["resources"]["CPU"] == os.cpu_count()


def test_bad_bounds_name_the_group():
    with pytest.raises(ManifestError, match=r"workerGroupSpecs\[0\] \('cpu'\): minReplicas 3"):
        autoscaling_plan(manifest([group(low=3, high=2)]))
    with pytest.raises(ManifestError, match="maxReplicas must be an integer >= 0; got 'x'"):
        autoscaling_plan(manifest([group(high="x")]))


def test_the_provider_section_points_ray_at_flyrays_provider():
    provider = config_of(manifest([group()]), temp_dir="/tmp/flyray-abc")["provider"]
    assert provider["type"] == "external" and provider["module"] == PROVIDER_MODULE
    assert provider["disable_node_updaters"] is True
    assert provider["temp_dir"] == "/tmp/flyray-abc"
    assert provider["gcs_address"] == "127.0.0.1:1234"


def test_autoscaler_env_goes_to_the_head():
    options = {"env": [{"name": "AUTOSCALER_LOG_LEVEL", "value": "debug"}]}
    assert autoscaling_plan(manifest([group()], options=options)).env == (
        ("AUTOSCALER_LOG_LEVEL", "debug"),
    )


def test_rays_own_config_checks_accept_it():
    from ray.autoscaler._private.util import validate_config
    from ray.autoscaler.v2.instance_manager.config import AutoscalingConfig

    config = config_of(manifest([group(resources={"limits": {"cpu": "1"}}), group("b")]))
    validate_config(copy.deepcopy(config))
    parsed = AutoscalingConfig(copy.deepcopy(config), skip_content_hash=True)
    types = parsed.get_node_type_configs()
    assert set(types) == {HEAD_NODE_TYPE, "cpu", "b"}
    assert types["cpu"].max_worker_nodes == 2 and types["cpu"].resources["CPU"] == 1
    assert parsed.get_upscaling_speed() == 1000
    assert parsed.disable_node_updaters()


def test_without_autoscaling_the_cluster_is_what_it_was():
    rayjob = manifest([group(replicas=1, low=1, high=3, params={"num-cpus": "1"})])
    assert autoscaling_enabled(rayjob)
    off = copy.deepcopy(rayjob)
    off["spec"]["rayClusterSpec"]["enableInTreeAutoscaling"] = False
    assert not autoscaling_enabled(off)
    assert new_cluster(off, print).workers[0].name == "cpu-0"
    assert new_cluster(off, print)._autoscaling is None
    on = new_cluster(rayjob, print)
    assert on._autoscaling is not None and [w.name for w in on.workers] == ["cpu-0"]


def test_a_flyte_style_config_renders_into_this_plan():
    from flyray.manifest.rayjob import render_rayjob
    from flyray.plugins.ray.request import ray_request

    config = RayJobConfig(
        head_node_config=HeadNodeConfig(ray_start_params={"num-cpus": "0"}),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="g",
                replicas=0,
                min_replicas=0,
                max_replicas=2,
                requests=flyray.Resources(cpu="1"),
            )
        ],
        enable_autoscaling=True,
        autoscaler_options=AutoscalerOptionsConfig(
            upscaling_mode=AutoscalerOptionsConfig.UpscalingMode.CONSERVATIVE,
            idle_timeout_seconds=5,
        ),
    )
    env = TaskEnvironment(name="as_env", plugin_config=config)

    @env.task
    def task() -> None: ...

    rayjob = render_rayjob(
        ray_request(task),
        run_id="r1",
        entrypoint=["true"],
        image="img",
        ray_version="2.60.0",
        mode="local-cluster",
    )
    plan = autoscaling_plan(rayjob)
    assert plan.upscaling_speed == 1 and plan.idle_timeout_s == 5.0
    (only,) = plan.groups
    assert (only.name, only.min_workers, only.max_workers, only.replicas) == ("g", 0, 2, 0)
    assert only.template.num_cpus == 1
