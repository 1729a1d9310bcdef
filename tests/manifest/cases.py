"""The task configurations the manifest tests render, and the fixed inputs of their run.

``render`` is ``render_rayjob`` of a task's ``RayJobRequest``; each of ``CASES`` is one
configuration, with a golden file in ``golden/``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flyray import PodTemplate, Resources, Secret, TaskEnvironment
from flyray.manifest.rayjob import render_rayjob
from flyray.plugins.ray import (
    AutoscalerOptions,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)
from flyray.plugins.ray.request import ray_request
from flyray.task.loader import load_task

REPO = Path(__file__).parents[2]
RUN_ID = "r0123456789"
IMAGE = "rayproject/ray:2.60.0-py311"
RAY_VERSION = "2.60.0"
ENTRYPOINT = [
    "python", "-m", "flyray.entrypoint", "--store", "/tmp/store", "--run-id", RUN_ID,
    "--file", "examples/seed.py", "--task", "ray_env.my_ray_task",
]  # fmt: skip


def make_task(
    config: Any,
    *,
    env_name: str = "golden_env",
    task_name: str = "train",
    retries: int = 0,
    timeout: float | timedelta | None = None,
    **env_kwargs: Any,
) -> Any:
    """A task named ``<env_name>.<task_name>`` in an environment with ``config``."""
    env = TaskEnvironment(env_name, plugin_config=config, **env_kwargs)

    def fn() -> None:
        pass

    fn.__name__ = task_name  # the task's name is its function's
    return env.task(retries=retries, timeout=timeout)(fn)


def render(task: Any, **overrides: Any) -> dict[str, Any]:
    """``render_rayjob`` of the task's request, with the fixed inputs of these tests."""
    kwargs: dict[str, Any] = {
        "run_id": RUN_ID,
        "entrypoint": ENTRYPOINT,
        "image": IMAGE,
        "ray_version": RAY_VERSION,
    }
    return render_rayjob(ray_request(task), **{**kwargs, **overrides})


# --- the configurations ---------------------------------------------------------------


def spec_example() -> tuple[Any, dict[str, Any]]:
    return load_task(str(REPO / "examples" / "seed.py"), "my_ray_task"), {}


def several_groups() -> tuple[Any, dict[str, Any]]:
    config = RayJobConfig(
        head_node_config=HeadNodeConfig(ray_start_params={"num-cpus": 0}),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="small", replicas=3, requests=Resources(cpu="500m", memory="1Gi")
            ),
            WorkerNodeConfig(
                group_name="big",
                requests=Resources(cpu=4, memory="16Gi"),
                limits=Resources(cpu=8, memory="16Gi"),
                ray_start_params={"object-store-memory": 1000000000},
            ),
            WorkerNodeConfig(group_name="empty", replicas=0),
        ],
    )
    return make_task(config), {"namespace": "ml-jobs"}


def autoscaling() -> tuple[Any, dict[str, Any]]:
    config = RayJobConfig(
        worker_node_config=[
            WorkerNodeConfig(group_name="elastic", replicas=1, min_replicas=0, max_replicas=5),
            WorkerNodeConfig(group_name="fixed", replicas=2, min_replicas=2, max_replicas=2),
        ],
        enable_autoscaling=True,
        autoscaler_options=AutoscalerOptions(
            upscaling_mode="Aggressive",
            idle_timeout_seconds=120,
            resources=Resources(cpu="500m", memory="512Mi"),
            env={"AUTOSCALER_LOG_LEVEL": "debug"},
            version="v2",
        ),
        shutdown_after_job_finishes=True,
    )
    return make_task(config), {}


def gpus() -> tuple[Any, dict[str, Any]]:
    config = RayJobConfig(
        head_node_config=HeadNodeConfig(requests=Resources(cpu=2, memory="8Gi")),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="gpu-workers",
                replicas=2,
                requests=Resources(cpu=8, memory="32Gi", gpu="A100:2", shm="8Gi"),
            )
        ],
    )
    return make_task(config, image="example.com/flyray-gpu:1"), {}


def pod_template() -> tuple[Any, dict[str, Any]]:
    head_template = PodTemplate(
        primary_container_name="main",
        labels={"team": "ml"},
        annotations={"owner": "ada"},
        pod_spec={
            "containers": [
                {"name": "log-shipper", "image": "fluent/fluent-bit:3"},
                {
                    "name": "main",
                    "image": "example.com/ray:custom",
                    "ports": [
                        {"containerPort": 6379, "name": "gcs-server"},
                        {"containerPort": 10001, "name": "client"},
                    ],
                    "env": [{"name": "MODE", "value": "train"}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                },
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "nodeSelector": {"pool": "ray"},
        },
    )
    config = RayJobConfig(
        head_node_config=HeadNodeConfig(pod_template=head_template, requests=Resources(cpu=2)),
        worker_node_config=[
            WorkerNodeConfig(
                group_name="workers",
                pod_template={
                    "spec": {
                        "containers": [
                            {"name": "sidecar", "image": "busybox", "ports": [{"containerPort": 9}]}
                        ]
                    }
                },
                requests=Resources(cpu=1, memory="2Gi"),
            )
        ],
    )
    return make_task(config), {}


def runtime_env() -> tuple[Any, dict[str, Any]]:
    config = RayJobConfig(
        worker_node_config=[WorkerNodeConfig(group_name="workers")],
        runtime_env={
            "pip": ["numpy==2.1.0", "pandas"],
            "env_vars": {"A": "from-config", "B": "from-config", "C": "from-config"},
        },
    )
    task = make_task(config, env_vars={"B": "from-environment", "C": "from-environment"})
    return task, {
        "working_dir": "file:///tmp/store/runs/r0123456789/bundle.zip",
        "env_vars": {"C": "from-argument", "FLYRAY_RUN_ID": RUN_ID},
    }


def timeout_and_retries() -> tuple[Any, dict[str, Any]]:
    config = RayJobConfig(
        worker_node_config=[WorkerNodeConfig(group_name="workers", replicas=2)],
        shutdown_after_job_finishes=True,
        ttl_seconds_after_finished=0,
        pre_running_deadline_seconds=600,
    )
    return make_task(config, retries=3, timeout=timedelta(minutes=30, seconds=0.5)), {}


def long_names() -> tuple[Any, dict[str, Any]]:
    config = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="workers")])
    task = make_task(
        config,
        env_name="a_very_long_environment_name_for_the_nightly_training_pipeline",
        task_name="train_the_model_with_every_option_switched_on",
    )
    return task, {}


def kuberay_1_0() -> tuple[Any, dict[str, Any]]:
    config = RayJobConfig(
        worker_node_config=[WorkerNodeConfig(group_name="workers")],
        runtime_env={"pip": ["requests"]},
        shutdown_after_job_finishes=True,
        ttl_seconds_after_finished=60,
    )
    return make_task(config), {"kuberay_version": "1.0.0", "env_vars": {"X": "1"}}


def secrets() -> tuple[Any, dict[str, Any]]:
    config = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="workers")])
    task = make_task(
        config,
        secrets=[
            Secret(key="api-key", group="ml-credentials", as_env_var="API_KEY"),
            "hf-token",
        ],
    )
    return task, {}


def store_secret() -> tuple[Any, dict[str, Any]]:
    """The run store's credentials from a Secret (envFrom), next to a task secret."""
    config = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="workers")])
    return make_task(config, secrets=["hf-token"]), {"store_secret": "flyray-run-store"}


CASES = {
    "spec_example": spec_example,
    "several_groups": several_groups,
    "autoscaling": autoscaling,
    "gpus": gpus,
    "pod_template": pod_template,
    "runtime_env": runtime_env,
    "timeout_and_retries": timeout_and_retries,
    "long_names": long_names,
    "kuberay_1_0": kuberay_1_0,
    "secrets": secrets,
    "store_secret": store_secret,
}


def rendered(name: str) -> dict[str, Any]:
    task, overrides = CASES[name]()
    return render(task, **overrides)
