"""``ray_request``: a Ray task's one typed request, which custom_config() and the RayJob share."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flyray import ManifestError, Resources, Secret, TaskEnvironment, Timeout
from flyray.config.settings import Settings
from flyray.executors import render as executors_render
from flyray.manifest.kuberay import kuberay_config
from flyray.manifest.rayjob import render_rayjob
from flyray.manifest.request import RayJobRequest
from flyray.plugins.ray import (
    AutoscalerOptions,
    HeadNodeConfig,
    RayFunctionTask,
    RayJobConfig,
    WorkerNodeConfig,
)
from flyray.plugins.ray import request as request_module
from flyray.plugins.ray.request import ray_request
from flyray.store.runstore import RunStore


def config(**overrides: Any) -> RayJobConfig:
    fields: dict[str, Any] = {
        "head_node_config": HeadNodeConfig(ray_start_params={"num-cpus": 0}),
        "worker_node_config": [
            WorkerNodeConfig(
                group_name="small",
                replicas=2,
                min_replicas=1,
                max_replicas=3,
                requests=Resources(cpu=1),
            ),
            WorkerNodeConfig(
                group_name="gpus", min_replicas=0, max_replicas=4, requests=Resources(gpu="T4:1")
            ),
        ],
        "enable_autoscaling": True,
        "autoscaler_options": AutoscalerOptions(upscaling_mode="Aggressive", env={"A": "1"}),
        "runtime_env": {"pip": ["numpy"], "env_vars": {"MODE": "config"}},
        "shutdown_after_job_finishes": True,
        "ttl_seconds_after_finished": 60,
        **overrides,
    }
    return RayJobConfig(**fields)


def make_task(plugin_config: Any, **task_options: Any) -> Any:
    env = TaskEnvironment(
        "req_env",
        plugin_config=plugin_config,
        env_vars={"LEVEL": "info"},
        secrets=[Secret(key="token", group="creds")],
        service_account="ray-sa",
    )

    def train() -> None:
        pass

    return env.task(**task_options)(train)


def render(request: RayJobRequest) -> dict[str, Any]:
    return render_rayjob(
        request, run_id="r0123456789", entrypoint=["true"], image="ray:1", ray_version="2.60.0"
    )


def test_the_request_holds_the_task_and_its_cluster() -> None:
    request = ray_request(make_task(config(), retries=2, timeout=timedelta(minutes=1)))
    assert (request.task_name, request.env_name, request.short_name) == (
        "req_env.train",
        "req_env",
        "train",
    )
    assert (request.retries, request.timeout, request.address) == (2, 60.0, None)
    assert request.env_vars == {"LEVEL": "info"}
    assert [s.key for s in request.secrets] == ["token"]
    assert request.service_account == "ray-sa"
    assert request.task_file == Path(__file__)
    assert request.cluster.head.ray_start_params == {"num-cpus": "0"}
    small, gpus = request.cluster.workers
    assert (small.name, small.replicas, small.min_replicas, small.max_replicas) == (
        "small",
        2,
        1,
        3,
    )
    assert (gpus.min_replicas, gpus.max_replicas) == (0, 4)
    assert "accelerator_type:T4" in gpus.ray_start_params["resources"]
    assert gpus.template["spec"]["serviceAccountName"] == "ray-sa"
    assert request.cluster.autoscaler is not None
    assert request.cluster.autoscaler.upscaling_mode == "Aggressive"


def test_the_request_is_frozen_and_a_snapshot_of_the_config() -> None:
    cfg = config()
    request = ray_request(make_task(cfg))
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.retries = 3  # type: ignore[misc]
    cfg.runtime_env["pip"].append("pandas")  # type: ignore[index]
    assert request.runtime_env == {"pip": ["numpy"], "env_vars": {"MODE": "config"}}


def test_custom_config_is_the_requests_kuberay_config() -> None:
    task = make_task(config())
    assert task.custom_config() == kuberay_config(ray_request(task))


def test_custom_config_and_the_rayjob_agree_on_the_cluster() -> None:
    task = make_task(config())
    custom = task.custom_config()
    rayjob = render(ray_request(task))["spec"]
    cluster, declared = rayjob["rayClusterSpec"], custom["rayClusterSpec"]
    assert cluster["enableInTreeAutoscaling"] is declared["enableInTreeAutoscaling"] is True
    assert cluster["autoscalerOptions"] == declared["autoscalerOptions"]
    assert cluster["headGroupSpec"]["rayStartParams"] == declared["headGroupSpec"]["rayStartParams"]
    fields = ("groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams")
    assert [{k: g[k] for k in fields} for g in cluster["workerGroupSpecs"]] == [
        {k: g[k] for k in fields} for g in declared["workerGroupSpecs"]
    ]
    for job_field in ("shutdownAfterJobFinishes", "ttlSecondsAfterFinished"):
        assert rayjob[job_field] == custom[job_field]


def test_the_queued_time_bound_is_the_pre_running_deadline() -> None:
    task = make_task(config(), timeout=Timeout(max_runtime=600, max_queued_time=119.5))
    request = ray_request(task)
    assert request.pre_running_deadline_seconds == 120
    assert task.custom_config()["preRunningDeadlineSeconds"] == 120
    assert render(request)["spec"]["preRunningDeadlineSeconds"] == 120
    own = ray_request(
        make_task(config(pre_running_deadline_seconds=30), timeout=Timeout(max_queued_time=5))
    )
    assert own.pre_running_deadline_seconds == 30


def test_a_task_without_a_ray_job_config_has_no_request() -> None:
    with pytest.raises(ManifestError, match=r"'req_env\.train' is not a Ray task.*RayJobConfig"):
        ray_request(make_task(None))


def test_an_existing_cluster_still_has_its_request() -> None:
    request = ray_request(make_task(RayJobConfig(address="ray://head:10001")))
    assert request.address == "ray://head:10001"
    with pytest.raises(ManifestError, match="no cluster to create"):
        render(request)


def test_a_run_builds_the_request_once_and_custom_config_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    build = request_module.ray_request

    def counting(task: Any) -> RayJobRequest:
        built.append(task.name)
        return build(task)

    def refused(self: Any, sctx: Any = None) -> None:
        raise AssertionError("the renderer reads the request, not custom_config()")

    monkeypatch.setattr(request_module, "ray_request", counting)
    monkeypatch.setattr(RayFunctionTask, "custom_config", refused)
    manifest = executors_render.render_kube_manifest(
        make_task(config()),
        run_id="r0000000001",
        store=RunStore(tmp_path / "runs"),
        settings=Settings(image="ray:1"),
    )
    assert built == ["req_env.train"]
    assert manifest["kind"] == "RayJob"
