"""RayJob manifests: golden files, KubeRay's schema (strict), the operator's rules, the fields.

Regenerate the golden files after an intended change with
``UPDATE_GOLDEN=1 pytest tests/manifest``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from flyray import ConfigError, ManifestError
from flyray.config.ray_images import default_image, ray_version
from flyray.manifest.serialization import dump_yaml
from flyray.plugins.ray import RayJobConfig
from tests.manifest.cases import (
    CASES,
    ENTRYPOINT,
    IMAGE,
    RAY_VERSION,
    RUN_ID,
    make_task,
    render,
    rendered,
    runtime_env,
    spec_example,
)
from tests.manifest.kuberay import operator_violations, schema_errors

GOLDEN = Path(__file__).parent / "golden"


# --- every configuration --------------------------------------------------------------


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


# --- job fields -----------------------------------------------------------------------


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


# --- cluster --------------------------------------------------------------------------


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


# --- errors ---------------------------------------------------------------------------


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


# --- the checkers themselves ----------------------------------------------------------


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


# --- images and imports ---------------------------------------------------------------


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
