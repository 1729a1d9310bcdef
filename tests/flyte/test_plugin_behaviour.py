"""What Flyte's own Ray-plugin tests assert, as flyray behaviour in KubeRay's JSON terms.

Flyte (flyte-sdk plugins/ray/tests/test_task.py) checks its protobuf RayJob; flyray's
``custom_config()`` is KubeRay's RayJob spec, so the same promises are checked here on
``rayClusterSpec.headGroupSpec`` / ``workerGroupSpecs[i]`` and their pod templates.
"""

from __future__ import annotations

from typing import Any

import pytest

import flyray
import flyray.errors
import flyray.plugins.ray as ray_plugin
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"  # Flyte's default accelerator label


def custom_config(config: RayJobConfig, **env_kwargs: Any) -> dict[str, Any]:
    env = flyray.TaskEnvironment(name="ray_env", plugin_config=config, **env_kwargs)

    @env.task
    async def my_ray_task() -> int:
        return 1

    return my_ray_task.custom_config()


def head_spec(rendered: dict[str, Any]) -> dict[str, Any]:
    return rendered["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]


def worker_spec(rendered: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return rendered["rayClusterSpec"]["workerGroupSpecs"][i]["template"]["spec"]


def accelerator_values(pod_spec: dict[str, Any]) -> set[str]:
    """Values the pod requires for the accelerator label: node selector or node affinity."""
    values = set()
    if ACCELERATOR_LABEL in pod_spec.get("nodeSelector", {}):
        values.add(pod_spec["nodeSelector"][ACCELERATOR_LABEL])
    node_affinity = pod_spec.get("affinity", {}).get("nodeAffinity", {})
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution", {})
    for term in required.get("nodeSelectorTerms", []):
        for expression in term.get("matchExpressions", []):
            if expression.get("key") == ACCELERATOR_LABEL and expression.get("operator") == "In":
                values.update(expression.get("values", []))
    return values


# --- GPU types reach the pods (Flyte: extended_resources.gpu_accelerator) ---------------------


def test_head_gpu_type_selects_its_accelerator():
    rendered = custom_config(
        RayJobConfig(
            head_node_config=HeadNodeConfig(requests=flyray.Resources(cpu=1, gpu="T4:1")),
            worker_node_config=[WorkerNodeConfig(group_name="grp", replicas=1)],
        )
    )
    assert "nvidia-tesla-t4" in accelerator_values(head_spec(rendered))
    assert accelerator_values(worker_spec(rendered)) == set()


def test_worker_gpu_type_selects_its_accelerator():
    rendered = custom_config(
        RayJobConfig(
            worker_node_config=[
                WorkerNodeConfig(
                    group_name="grp", replicas=2, requests=flyray.Resources(cpu=1, gpu="A100:2")
                )
            ]
        )
    )
    assert len(rendered["rayClusterSpec"]["workerGroupSpecs"]) == 1
    spec = worker_spec(rendered)
    assert "nvidia-tesla-a100" in accelerator_values(spec)
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_gpu_device_object_selects_its_accelerator():
    rendered = custom_config(
        RayJobConfig(
            worker_node_config=[
                WorkerNodeConfig(
                    group_name="grp",
                    replicas=1,
                    requests=flyray.Resources(gpu=flyray.GPU(device="A10G", quantity=1)),
                )
            ]
        )
    )
    assert "nvidia-a10g" in accelerator_values(worker_spec(rendered))


def test_no_accelerator_without_a_gpu_type():
    rendered = custom_config(
        RayJobConfig(
            head_node_config=HeadNodeConfig(requests=flyray.Resources(cpu=1, memory="1Gi")),
            worker_node_config=[
                WorkerNodeConfig(
                    group_name="grp", replicas=1, requests=flyray.Resources(cpu=1, memory="1Gi")
                )
            ],
        )
    )
    for spec in (head_spec(rendered), worker_spec(rendered)):
        assert accelerator_values(spec) == set()
        assert "nodeSelector" not in spec and "affinity" not in spec


# --- Pod templates and requests --------------------------------------------------------------

TEMPLATE_SPEC = {
    "containers": [
        {
            "name": "CONTAINER",
            "args": ["wut update-aws-credentials-file default"],
            "resources": {
                "requests": {"cpu": "15000m", "memory": "45Gi"},
                "limits": {"cpu": "15000m", "memory": "45Gi"},
            },
        }
    ]
}


def wut_pod_template(container_name: str, form: str) -> flyray.PodTemplate:
    """A template with a custom entrypoint and cpu/memory, as a dict or as Kubernetes objects."""
    if form == "dict":
        spec = {"containers": [{**TEMPLATE_SPEC["containers"][0], "name": container_name}]}
        return flyray.PodTemplate(pod_spec=spec)
    client = pytest.importorskip("kubernetes.client")
    return flyray.PodTemplate(
        pod_spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name=container_name,
                    args=["wut update-aws-credentials-file default"],
                    resources=client.V1ResourceRequirements(
                        requests={"cpu": "15000m", "memory": "45Gi"},
                        limits={"cpu": "15000m", "memory": "45Gi"},
                    ),
                )
            ]
        )
    )


FORMS = ["dict", "V1PodSpec"]  # flyray's JSON form, and Flyte's kubernetes.client form


@pytest.mark.parametrize("form", FORMS)
def test_worker_pod_template_merged_with_gpu_request(form):
    rendered = custom_config(
        RayJobConfig(
            worker_node_config=[
                WorkerNodeConfig(
                    group_name="workers",
                    replicas=2,
                    requests=flyray.Resources(gpu="A10G:1"),
                    pod_template=wut_pod_template("ray-worker", form),
                )
            ]
        )
    )
    spec = worker_spec(rendered)
    container = spec["containers"][0]
    assert container["args"] == ["wut update-aws-credentials-file default"]
    assert container["resources"]["requests"]["cpu"] == "15000m"
    assert container["resources"]["requests"]["memory"] == "45Gi"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia-a10g" in accelerator_values(spec)


@pytest.mark.parametrize("form", FORMS)
def test_head_pod_template_merged_with_gpu_request(form):
    rendered = custom_config(
        RayJobConfig(
            head_node_config=HeadNodeConfig(
                requests=flyray.Resources(gpu="T4:1"),
                pod_template=wut_pod_template("ray-head", form),
            ),
            worker_node_config=[WorkerNodeConfig(group_name="grp", replicas=1)],
        )
    )
    spec = head_spec(rendered)
    container = spec["containers"][0]
    assert container["args"] == ["wut update-aws-credentials-file default"]
    assert container["resources"]["requests"]["cpu"] == "15000m"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia-tesla-t4" in accelerator_values(spec)


@pytest.mark.parametrize("form", FORMS)
def test_requests_take_precedence_over_pod_template_resources(form):
    rendered = custom_config(
        RayJobConfig(
            worker_node_config=[
                WorkerNodeConfig(
                    group_name="workers",
                    replicas=1,
                    requests=flyray.Resources(cpu="8000m", memory="32Gi"),
                    pod_template=wut_pod_template("ray-worker", form),
                )
            ]
        )
    )
    container = worker_spec(rendered)["containers"][0]
    assert container["resources"]["requests"]["cpu"] in ("8000m", "8")  # the same quantity
    assert container["resources"]["requests"]["memory"] == "32Gi"
    assert container["args"] == ["wut update-aws-credentials-file default"]


@pytest.mark.parametrize("form", FORMS)
def test_pod_template_without_requests_is_unchanged(form):
    rendered = custom_config(
        RayJobConfig(
            worker_node_config=[
                WorkerNodeConfig(
                    group_name="workers",
                    replicas=1,
                    pod_template=wut_pod_template("ray-worker", form),
                )
            ]
        )
    )
    container = worker_spec(rendered)["containers"][0]
    assert container["args"] == ["wut update-aws-credentials-file default"]
    assert container["resources"] == TEMPLATE_SPEC["containers"][0]["resources"]


# --- Reusable Ray environments -------------------------------------------------------------


def reusable_task(config: RayJobConfig, policy: flyray.ReusePolicy) -> Any:
    env = flyray.TaskEnvironment(name="reusable_ray_env", plugin_config=config, reusable=policy)

    @env.task
    async def my_ray_task() -> int:
        return 1

    return my_ray_task


def test_reuse_policy_is_accepted_and_not_in_custom_config():
    task = reusable_task(
        RayJobConfig(worker_node_config=[]), flyray.ReusePolicy(replicas=1, idle_ttl=600)
    )
    rendered = task.custom_config()
    assert "reusePolicy" not in rendered
    assert "rayClusterSpec" in rendered


def test_reuse_policy_with_several_replicas_is_refused():
    with pytest.raises(flyray.errors.RuntimeUserError, match="exactly 1 replica"):
        reusable_task(RayJobConfig(worker_node_config=[]), flyray.ReusePolicy(replicas=(1, 3)))


def test_reuse_policy_with_concurrency_is_refused():
    with pytest.raises(flyray.errors.RuntimeUserError, match="concurrency"):
        reusable_task(
            RayJobConfig(worker_node_config=[]), flyray.ReusePolicy(replicas=1, concurrency=2)
        )


def test_reuse_policy_refuses_shutdown_after_job_finishes():
    with pytest.raises(flyray.errors.RuntimeUserError, match="shutdown_after_job_finishes"):
        reusable_task(
            RayJobConfig(worker_node_config=[], shutdown_after_job_finishes=True),
            flyray.ReusePolicy(replicas=1, idle_ttl=600),
        )


def test_reuse_policy_refuses_ttl_seconds_after_finished():
    # ttl=0 passes flyray's own TTL rule, so only the reuse rule can refuse it.
    with pytest.raises(flyray.errors.RuntimeUserError, match="ttl_seconds_after_finished"):
        reusable_task(
            RayJobConfig(worker_node_config=[], ttl_seconds_after_finished=0),
            flyray.ReusePolicy(replicas=1, idle_ttl=600),
        )


def test_reuse_policy_refuses_flytes_ttl_case():
    # Flyte's own case (a TTL without shutdown) also breaks flyray's TTL rule (stricter than
    # Flyte, on purpose: KubeRay ignores such a TTL); either refusal names the field.
    with pytest.raises(
        (flyray.errors.RuntimeUserError, flyray.ConfigError), match="ttl_seconds_after_finished"
    ):
        reusable_task(
            RayJobConfig(worker_node_config=[], ttl_seconds_after_finished=300),
            flyray.ReusePolicy(replicas=1, idle_ttl=600),
        )


# --- Autoscaler options --------------------------------------------------------------------


def autoscaling(options: Any) -> dict[str, Any]:
    """Flyte's tests give the autoscaled group replicas only: flyray says KubeRay's bounds apply."""
    with pytest.warns(flyray.FlyrayWarning, match=r"no max_replicas: KubeRay's defaults apply"):
        config = RayJobConfig(
            worker_node_config=[WorkerNodeConfig(group_name="grp", replicas=1)],
            enable_autoscaling=True,
            autoscaler_options=options,
        )
    return custom_config(config)


def test_autoscaler_options_full():
    rendered = autoscaling(
        ray_plugin.AutoscalerOptionsConfig(
            upscaling_mode=ray_plugin.AutoscalerOptionsConfig.UpscalingMode.AGGRESSIVE,
            idle_timeout_seconds=120,
            image="my-registry/ray-autoscaler:latest",
            env={"RAY_LOG_LEVEL": "DEBUG", "MY_VAR": "value"},
            resources=flyray.Resources(cpu="500m", memory="512Mi"),
        )
    )
    cluster = rendered["rayClusterSpec"]
    options = cluster["autoscalerOptions"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert options["upscalingMode"] == "Aggressive"
    assert options["idleTimeoutSeconds"] == 120
    assert options["image"] == "my-registry/ray-autoscaler:latest"
    env = {item["name"]: item["value"] for item in options["env"]}
    assert env == {"RAY_LOG_LEVEL": "DEBUG", "MY_VAR": "value"}
    assert options["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}


def test_autoscaler_resources_as_request_limit_pairs():
    rendered = autoscaling(
        ray_plugin.AutoscalerOptionsConfig(
            resources=flyray.Resources(cpu=("500m", "1"), memory=("512Mi", "1Gi"))
        )
    )
    resources = rendered["rayClusterSpec"]["autoscalerOptions"]["resources"]
    assert resources == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }


@pytest.mark.parametrize(
    ("member", "rendered_mode"),
    [("CONSERVATIVE", "Conservative"), ("DEFAULT", "Default"), ("AGGRESSIVE", "Aggressive")],
)
def test_upscaling_mode_is_rendered_as_kuberay_names_it(member, rendered_mode):
    mode = getattr(ray_plugin.AutoscalerOptionsConfig.UpscalingMode, member)
    rendered = autoscaling(ray_plugin.AutoscalerOptionsConfig(upscaling_mode=mode))
    assert rendered["rayClusterSpec"]["autoscalerOptions"]["upscalingMode"] == rendered_mode


def test_unspecified_upscaling_mode_leaves_kuberays_default():
    mode = ray_plugin.AutoscalerOptionsConfig.UpscalingMode.UNSPECIFIED
    rendered = autoscaling(ray_plugin.AutoscalerOptionsConfig(upscaling_mode=mode))
    assert "upscalingMode" not in rendered["rayClusterSpec"]["autoscalerOptions"]


def test_no_autoscaler_options_when_absent():
    assert "autoscalerOptions" not in autoscaling(None)["rayClusterSpec"]


def test_autoscaling_group_without_bounds_is_accepted():
    # KubeRay defaults the bounds; Flyte's example gives replicas only.
    rendered = autoscaling(None)
    group = rendered["rayClusterSpec"]["workerGroupSpecs"][0]
    assert (group["replicas"], group["minReplicas"], group["maxReplicas"]) == (1, 0, 2147483647)
