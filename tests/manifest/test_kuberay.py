"""KubeRay's dialect: the fields each operator version reads, the cluster in its terms."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from flyray import ConfigError, ManifestError
from flyray.manifest.kuberay import LATEST_KUBERAY_VERSION
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig
from tests.manifest.cases import kuberay_1_0, make_task, render, rendered, spec_example

# --- fields per operator version ------------------------------------------------------


def test_no_runtime_env_no_field() -> None:
    spec = rendered("several_groups")["spec"]
    assert "runtimeEnvYAML" not in spec and "runtimeEnv" not in spec


def test_old_dialect_has_base64_runtime_env_only() -> None:
    spec = rendered("kuberay_1_0")["spec"]
    assert "runtimeEnvYAML" not in spec
    assert json.loads(base64.b64decode(spec["runtimeEnv"])) == {
        "pip": ["requests"],
        "env_vars": {"X": "1"},
    }
    # KubeRay 1.0 has no backoffLimit or activeDeadlineSeconds: not written, not pretended.
    assert "backoffLimit" not in spec and "activeDeadlineSeconds" not in spec


@pytest.mark.parametrize(
    ("version", "field"),
    [
        ("1.0.0", "runtimeEnv"),
        ("1.0.9", "runtimeEnv"),
        ("1.1.0", "runtimeEnvYAML"),
        ("v1.1", "runtimeEnvYAML"),
        ("1.1.0-rc.1", "runtimeEnvYAML"),
        ("1.10.0", "runtimeEnvYAML"),
        (LATEST_KUBERAY_VERSION, "runtimeEnvYAML"),
        ("2.0.0", "runtimeEnvYAML"),
    ],
)
def test_versions_compare_as_numbers(version: str, field: str) -> None:
    task, _ = kuberay_1_0()
    assert field in render(task, kuberay_version=version)["spec"]


def test_old_operator_cannot_express_retries_or_timeout() -> None:
    config = RayJobConfig(worker_node_config=[])
    with pytest.raises(ManifestError, match=r"retries=2.*backoffLimit was added in 1\.2\.0"):
        render(make_task(config, retries=2), kuberay_version="1.1.0")
    with pytest.raises(ManifestError, match=r"timeout=60s.*added in 1\.1\.0"):
        render(make_task(config, timeout=60), kuberay_version="1.0.0")
    assert (
        render(make_task(config, retries=2), kuberay_version="1.2.0")["spec"]["backoffLimit"] == 2
    )
    waiting = RayJobConfig(pre_running_deadline_seconds=60)
    with pytest.raises(ManifestError, match=r"pre_running_deadline_seconds=60.*added in 1\.6\.0"):
        render(make_task(waiting), kuberay_version="1.5.0")


def test_bad_kuberay_version() -> None:
    task, _ = spec_example()
    with pytest.raises(ConfigError, match="kuberay_version"):
        render(task, kuberay_version="latest")
    with pytest.raises(ManifestError, match=r"does not serve ray\.io/v1"):
        render(task, kuberay_version="0.6.0")


def test_ray_token_authentication_where_kuberay_and_ray_have_it() -> None:
    task, _ = spec_example()
    cluster = render(task)["spec"]["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}  # KubeRay makes and hands out the token
    assert "authOptions" not in render(task, kuberay_version="1.5.0")["spec"]["rayClusterSpec"]
    assert "authOptions" not in render(task, ray_version="2.51.0")["spec"]["rayClusterSpec"]
    assert render(task, ray_version="2.52.0")["spec"]["rayClusterSpec"]["authOptions"]


# --- the cluster ----------------------------------------------------------------------


def test_autoscaling_fields_are_kept() -> None:
    cluster = rendered("autoscaling")["spec"]["rayClusterSpec"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["autoscalerOptions"]["upscalingMode"] == "Aggressive"
    assert cluster["autoscalerOptions"]["version"] == "v2"
    bounds = [(g["minReplicas"], g["maxReplicas"]) for g in cluster["workerGroupSpecs"]]
    assert bounds == [(0, 5), (2, 2)]


def head_with_ports(ports: list[dict[str, Any]], **start_params: Any) -> Any:
    template = {"spec": {"containers": [{"name": "ray-head", "ports": ports}]}}
    head = HeadNodeConfig(pod_template=template, ray_start_params=start_params or None)
    return make_task(RayJobConfig(head_node_config=head))


def head_ports(task: Any) -> list[dict[str, Any]]:
    spec = render(task)["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    return spec["containers"][0]["ports"]


def test_unnamed_dashboard_port_gets_its_name() -> None:
    assert head_ports(head_with_ports([{"containerPort": 8265}])) == [
        {"containerPort": 8265, "name": "dashboard"}
    ]


def test_dashboard_port_follows_the_start_param() -> None:
    task = head_with_ports([{"containerPort": 6379, "name": "gcs"}], **{"dashboard-port": 9000})
    assert head_ports(task)[-1] == {"containerPort": 9000, "name": "dashboard"}


def test_dashboard_port_with_another_name_is_an_error() -> None:
    task = head_with_ports([{"containerPort": 8265, "name": "http"}])
    with pytest.raises(ManifestError, match=r"port 8265 named 'http'.*'dashboard'"):
        render(task)
