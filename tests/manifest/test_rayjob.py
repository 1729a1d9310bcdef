"""RayJob manifests: golden files, KubeRay's schema (strict), the operator's rules, dialects.

Regenerate the golden files after an intended change with
``UPDATE_GOLDEN=1 pytest tests/manifest``.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from flyray import ConfigError, ManifestError, PodTemplate, Resources, Secret, TaskEnvironment
from flyray.config.ray_images import default_image, ray_version
from flyray.manifest.rayjob import (
    LATEST_KUBERAY_VERSION,
    dump_json,
    dump_yaml,
    rayjob_name,
    render_rayjob,
    task_label,
)
from flyray.plugins.ray import (
    AutoscalerOptions,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)
from flyray.task.loader import load_task
from tests.manifest.kuberay import operator_violations, schema_errors

REPO = Path(__file__).parents[2]
GOLDEN = Path(__file__).parent / "golden"
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
    """``render_rayjob`` with the fixed inputs of these tests."""
    kwargs: dict[str, Any] = {
        "run_id": RUN_ID,
        "entrypoint": ENTRYPOINT,
        "image": IMAGE,
        "ray_version": RAY_VERSION,
    }
    return render_rayjob(task, **{**kwargs, **overrides})


# --- the configurations -----------------------------------------------------------------


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
}


def rendered(name: str) -> dict[str, Any]:
    task, overrides = CASES[name]()
    return render(task, **overrides)


# --- every configuration ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    text = dump_yaml(rendered(name))
    path = GOLDEN / f"rayjob_{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_strict_schema_valid(name: str) -> None:
    manifest = rendered(name)
    assert schema_errors(manifest, legacy_runtime_env="runtimeEnv" in manifest["spec"]) == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_operator_violations(name: str) -> None:
    assert operator_violations(rendered(name)) == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_deterministic(name: str) -> None:
    first, second = rendered(name), rendered(name)
    assert first is not second
    assert dump_yaml(first).encode() == dump_yaml(second).encode()
    assert dump_json(first).encode() == dump_json(second).encode()


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_none_and_sorted_keys(name: str) -> None:
    def walk(value: Any, where: str) -> None:
        assert value is not None, where
        if isinstance(value, dict):
            assert list(value) == sorted(value), where
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")

    walk(rendered(name), "manifest")


@pytest.mark.parametrize("name", sorted(CASES))
def test_yaml_and_json_load_back(name: str) -> None:
    manifest = rendered(name)
    assert yaml.safe_load(dump_yaml(manifest)) == manifest
    assert json.loads(dump_json(manifest)) == manifest
    assert "&id" not in dump_yaml(manifest)  # no anchors or aliases


TRICKY = {
    "EMPTY": "",
    "BOOLISH": "yes",
    "NUMBERISH": "0123",
    "NULLISH": "null",
    "COLON": "a: b",
    "HASH": "x #y",
    "LEADING": "  spaced",
    "UNICODE": "naïve ☃",
    "MULTILINE": "line one\n  indented\nlast\n",
    "TRAILING": "trailing space \nnext",
    "QUOTES": 'it\'s "quoted"',
    "DOLLAR": "$HOME/${X}",
}


def tricky() -> dict[str, Any]:
    return render(runtime_env()[0], env_vars=TRICKY, entrypoint=["python", *TRICKY.values()])


def test_tricky_strings_survive_yaml() -> None:
    manifest = tricky()
    assert yaml.safe_load(dump_yaml(manifest)) == manifest
    assert (
        yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])["env_vars"]["MULTILINE"]
        == (TRICKY["MULTILINE"])
    )


@pytest.mark.skipif(not hasattr(yaml, "CSafeDumper"), reason="PyYAML built without libyaml")
@pytest.mark.parametrize("name", [*sorted(CASES), "tricky"])
def test_libyaml_and_pure_python_write_the_same_bytes(name: str) -> None:
    from flyray.manifest import rayjob

    manifest = tricky() if name == "tricky" else rendered(name)
    fast = rayjob._dump(manifest, rayjob._safe_dumper(yaml.CSafeDumper))
    assert fast == rayjob._dump(manifest, rayjob._safe_dumper(yaml.SafeDumper))
    assert fast == dump_yaml(manifest)


# --- job fields -------------------------------------------------------------------------


def test_top_level_and_metadata() -> None:
    manifest = rendered("spec_example")
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayJob")
    assert manifest["metadata"] == {
        "annotations": {"flyray.io/task-name": "ray_env.my_ray_task"},
        "labels": {
            "app.kubernetes.io/managed-by": "flyray",
            "flyray.io/run-id": RUN_ID,
            "flyray.io/task": "ray-env-my-ray-task",
        },
        "name": "ray-env-my-ray-task-r0123456789",
    }
    assert rendered("several_groups")["metadata"]["namespace"] == "ml-jobs"


@pytest.mark.parametrize(
    "argv",
    [
        ENTRYPOINT,
        ["python", "/tmp/my store/it's here/main.py", "--msg", 'say "hi"'],
        ["python", "-c", "print('$HOME')", "$HOME", "${PATH}", "`id`", "$(id)", "a;b", "x|y"],
        ["python", "", "tab\there", "new\nline", "star*", "~user", "#comment"],
    ],
)
def test_entrypoint_round_trips(argv: list[str]) -> None:
    entrypoint = render(spec_example()[0], entrypoint=argv)["spec"]["entrypoint"]
    assert shlex.split(entrypoint) == argv
    if shutil.which("bash"):  # the operator pastes it into a bash line: bash must agree
        out = subprocess.run(
            ["bash", "-c", f"printf '%s\\0' {entrypoint[len('python ') :]} ;"],
            capture_output=True,
            text=True,
            check=True,
            env={"HOME": "/nonexistent", "PATH": os.environ.get("PATH", "")},
        ).stdout
        assert ["python", *out.split("\0")[:-1]] == argv


def test_runtime_env_yaml_is_the_merged_runtime_env() -> None:
    spec = rendered("runtime_env")["spec"]
    assert "runtimeEnv" not in spec
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {
        "pip": ["numpy==2.1.0", "pandas"],
        "working_dir": "file:///tmp/store/runs/r0123456789/bundle.zip",
        "env_vars": {
            "A": "from-config",
            "B": "from-environment",
            "C": "from-argument",
            "FLYRAY_RUN_ID": RUN_ID,
        },
    }


def test_runtime_env_input_is_not_changed() -> None:
    task, overrides = runtime_env()
    before = json.dumps(task.plugin_config.runtime_env, sort_keys=True)
    render(task, **overrides)
    assert json.dumps(task.plugin_config.runtime_env, sort_keys=True) == before


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


def test_deadline_and_retries() -> None:
    spec = rendered("timeout_and_retries")["spec"]
    assert spec["activeDeadlineSeconds"] == 1801  # 1800.5 s rounded up
    assert spec["backoffLimit"] == 3
    assert spec["ttlSecondsAfterFinished"] == 0
    assert spec["preRunningDeadlineSeconds"] == 600
    example = rendered("spec_example")["spec"]
    assert example["backoffLimit"] == 0 and "activeDeadlineSeconds" not in example
    assert "preRunningDeadlineSeconds" not in example
    assert "ttlSecondsAfterFinished" not in rendered("several_groups")["spec"]


# --- cluster ----------------------------------------------------------------------------


def test_ray_version_image_and_replica_bounds() -> None:
    cluster = rendered("several_groups")["spec"]["rayClusterSpec"]
    assert cluster["rayVersion"] == RAY_VERSION
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    assert {g["template"]["spec"]["containers"][0]["image"] for g in groups} == {IMAGE}
    assert [(g["minReplicas"], g["replicas"], g["maxReplicas"]) for g in groups[1:]] == [
        (3, 3, 3),
        (1, 1, 1),
        (0, 0, 0),
    ]


def test_environment_image_wins_over_the_default() -> None:
    cluster = rendered("gpus")["spec"]["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    assert {g["template"]["spec"]["containers"][0]["image"] for g in groups} == {
        "example.com/flyray-gpu:1"
    }


def test_autoscaling_fields_are_kept() -> None:
    cluster = rendered("autoscaling")["spec"]["rayClusterSpec"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["autoscalerOptions"]["upscalingMode"] == "Aggressive"
    assert cluster["autoscalerOptions"]["version"] == "v2"
    bounds = [(g["minReplicas"], g["maxReplicas"]) for g in cluster["workerGroupSpecs"]]
    assert bounds == [(0, 5), (2, 2)]


def test_user_template_keeps_image_sidecars_and_gets_a_dashboard_port() -> None:
    cluster = rendered("pod_template")["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in head] == ["ray-head", "log-shipper"]
    assert head[0]["image"] == "example.com/ray:custom"
    assert head[0]["ports"] == [
        {"containerPort": 6379, "name": "gcs-server"},
        {"containerPort": 10001, "name": "client"},
        {"containerPort": 8265, "name": "dashboard"},
    ]
    worker = cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"]
    assert [c["name"] for c in worker] == ["ray-worker", "sidecar"]
    assert worker[0]["image"] == IMAGE and "ports" not in worker[0]
    assert worker[1] == {"image": "busybox", "name": "sidecar", "ports": [{"containerPort": 9}]}


def test_no_ports_when_the_user_lists_none() -> None:
    head = rendered("spec_example")["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert "ports" not in head["template"]["spec"]["containers"][0]


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


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_name_is_a_short_dns1035_label(name: str) -> None:
    task, _ = CASES[name]()
    metadata = rendered(name)["metadata"]
    assert metadata["name"] == rayjob_name(task, RUN_ID)
    assert len(metadata["name"]) <= 47 and metadata["name"].endswith(f"-{RUN_ID}")
    assert len(metadata["labels"]["flyray.io/task"]) <= 63


def test_long_names_are_cut_with_a_hash_and_stay_unique() -> None:
    task, _ = long_names()
    names = {rayjob_name(task, run_id) for run_id in ("r0123456789", "r0123456788", "rffffffffff")}
    assert len(names) == 3
    assert all(len(n) == 47 for n in names)
    # Both names stay readable: the start of each, then a hash of the full name.
    assert rayjob_name(task, RUN_ID) == "a-very-long-train-the-mode-7d7413bc-r0123456789"
    assert task_label(task) == "a-very-long-environment-na-train-the-model-with-every-7d7413bc"
    other = make_task(
        RayJobConfig(),
        env_name="a_very_long_environment_name_for_the_nightly_training_pipeline",
        task_name="train_the_model_with_every_option_switched_off",
    )
    assert rayjob_name(other, RUN_ID) != rayjob_name(task, RUN_ID)
    assert rendered("long_names")["metadata"]["annotations"]["flyray.io/task-name"] == task.name


@pytest.mark.parametrize("run_id", ["", "R0123", "r_1", "-r1", "r1-", "r" * 33, 12345])
def test_bad_run_id(run_id: Any) -> None:
    with pytest.raises(ConfigError, match="run_id"):
        rayjob_name(spec_example()[0], run_id)


# --- errors -----------------------------------------------------------------------------


def test_plain_task_needs_a_ray_job_config() -> None:
    task = make_task(None, env_name="plain_env")
    with pytest.raises(ManifestError, match=r"'plain_env\.train' is not a Ray task.*RayJobConfig"):
        render(task)


def test_existing_cluster_creates_nothing() -> None:
    task = make_task(RayJobConfig(address="ray://head.example.com:10001"))
    with pytest.raises(ManifestError, match=r"existing Ray cluster at .*no cluster to create"):
        render(task)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"entrypoint": "python -m x"}, "entrypoint"),
        ({"entrypoint": []}, "entrypoint"),
        ({"entrypoint": ["python", 1]}, "entrypoint"),
        ({"image": ""}, "image"),
        ({"ray_version": ""}, "ray_version"),
        ({"namespace": "Not_A_Label"}, "namespace"),
        ({"env_vars": {"1BAD": "x"}}, "env_vars"),
        ({"env_vars": {"GOOD": 1}}, "env_vars"),
        ({"working_dir": " "}, "working_dir"),
    ],
)
def test_bad_arguments_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        render(spec_example()[0], **overrides)
    assert info.value.field.startswith(field)


# --- the checkers themselves ------------------------------------------------------------


def test_strict_schema_catches_a_misspelled_field() -> None:
    manifest = rendered("spec_example")
    manifest["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0][
        "imagePulPolicy"
    ] = "Always"
    manifest["spec"]["runtimeEnv"] = "e30="  # gone since KubeRay 1.1.0
    errors = schema_errors(manifest)
    assert len(errors) == 2
    assert any("imagePulPolicy" in e for e in errors) and any("runtimeEnv" in e for e in errors)


def test_operator_rules_are_checked() -> None:
    manifest = rendered("several_groups")
    spec = manifest["spec"]
    manifest["metadata"]["name"] = "9-starts-with-a-digit"
    spec.update(
        clusterSelector={"ray.io/cluster": "x"},
        shutdownAfterJobFinishes=False,
        ttlSecondsAfterFinished=10,
        activeDeadlineSeconds=0,
        backoffLimit=-1,
        entrypoint="  ",
        runtimeEnvYAML="a: [unclosed",
    )
    head = spec["rayClusterSpec"]["headGroupSpec"]
    head["rayStartParams"]["num-cpus"] = 0
    head["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 6379}]
    workers = spec["rayClusterSpec"]["workerGroupSpecs"]
    workers[0]["minReplicas"] = 4
    del workers[1]["maxReplicas"]
    workers[2]["template"]["spec"]["containers"][0]["name"] = ""
    problems = "\n".join(operator_violations(manifest))
    for needle in [
        "DNS-1035",
        "exactly one of rayClusterSpec",
        "ttlSecondsAfterFinished > 0",
        "activeDeadlineSeconds",
        "backoffLimit",
        "entrypoint",
        "runtimeEnvYAML must parse",
        "rayStartParams['num-cpus'] must be a string",
        "named 'dashboard'",
        "workerGroupSpecs[0]: minReplicas 4 must be <= maxReplicas 3",
        "workerGroupSpecs[1]: minReplicas and maxReplicas must both be set",
        "workerGroupSpecs[2]: the Ray container must come first",
    ]:
        assert needle in problems


# --- images and imports -----------------------------------------------------------------


def test_default_image_matches_ray_and_python() -> None:
    from importlib.metadata import version

    assert ray_version() == version("ray")
    assert default_image((3, 11), ray="2.60.0") == "rayproject/ray:2.60.0-py311"
    assert default_image((3, 10), ray="3.0.0.dev0") == "rayproject/ray:nightly-py310"
    major, minor = sys.version_info[:2]
    assert default_image() == f"rayproject/ray:{version('ray')}-py{major}{minor}"


def test_importing_the_manifest_layer_stays_light() -> None:
    code = (
        "import sys, flyray, flyray.manifest.rayjob, flyray.manifest.images\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ray', 'kubernetes', 'yaml', 'jsonschema')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_secrets_are_references_on_every_ray_container_and_the_submitter() -> None:
    manifest = rendered("secrets")
    cluster = manifest["spec"]["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    submitter = manifest["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    expected = [
        {
            "name": "API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "ml-credentials", "key": "api-key"}},
        },
        {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "hf-token"}},
        },
    ]
    for container in [*(g["template"]["spec"]["containers"][0] for g in groups), submitter]:
        assert container["env"] == expected
    assert submitter["image"] == IMAGE
    assert "submitterPodTemplate" not in rendered("spec_example")["spec"]


def test_ray_token_authentication_where_kuberay_and_ray_have_it() -> None:
    task, _ = spec_example()
    cluster = render(task)["spec"]["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}  # KubeRay makes and hands out the token
    assert "authOptions" not in render(task, kuberay_version="1.5.0")["spec"]["rayClusterSpec"]
    assert "authOptions" not in render(task, ray_version="2.51.0")["spec"]["rayClusterSpec"]
    assert render(task, ray_version="2.52.0")["spec"]["rayClusterSpec"]["authOptions"]


def test_an_environment_name_that_starts_with_a_digit_still_names_a_rayjob():
    from flyray.manifest.rayjob import rayjob_name

    task = make_task(RayJobConfig(), env_name="2d_env")
    name = rayjob_name(task, "abc123")
    assert name.startswith("e2d-env-") and name.endswith("-abc123")
