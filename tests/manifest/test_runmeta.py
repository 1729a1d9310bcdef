"""What a run's options (with_runcontext's labels, annotations, service_account, env_vars) add."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

import flyray
from flyray import ConfigError, TaskEnvironment
from flyray.config.settings import Settings
from flyray.executors.base import RunOptions
from flyray.executors.render import render_for_run, render_kube_manifest
from flyray.manifest.runmeta import apply_run_options
from flyray.plugins.ray import RayJobConfig, WorkerNodeConfig
from flyray.store.runstore import RunStore
from tests.manifest.kuberay import operator_violations, schema_errors

OPTIONS = RunOptions(
    env_vars={"RUN_VAR": "run", "BOTH": "run"},
    labels={"team": "ml", "example.com/cost-centre": "c-12"},
    annotations={"note": "any text: even spaces"},
    service_account="ray-runner",
)


def make_task(**config: Any) -> Any:
    env = TaskEnvironment(
        "meta_env",
        plugin_config=RayJobConfig(
            worker_node_config=[WorkerNodeConfig(group_name="w", replicas=1)], **config
        ),
        env_vars={"ENV_VAR": "env", "BOTH": "env"},
    )

    def train() -> None:
        pass

    return env.task(train)


def render(task: Any, tmp_path: Any, options: RunOptions | None = OPTIONS) -> dict[str, Any]:
    return render_kube_manifest(
        task,
        run_id="r0000000001",
        store=RunStore(tmp_path / "runs"),
        settings=Settings(image="rayproject/ray:2.60.0-py311"),
        namespace="ml",
        options=options,
    )


def test_a_rayjob_gets_the_runs_labels_annotations_service_account_and_env_vars(tmp_path):
    manifest = render(make_task(), tmp_path)
    metadata = manifest["metadata"]
    assert metadata["labels"]["team"] == "ml"
    assert metadata["labels"]["example.com/cost-centre"] == "c-12"
    assert metadata["labels"]["flyray.io/run-id"] == "r0000000001"  # flyray's own stay
    assert metadata["annotations"]["note"] == "any text: even spaces"
    assert metadata["annotations"]["flyray.io/task-name"] == "meta_env.train"
    cluster = manifest["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    assert [pod["template"]["spec"]["serviceAccountName"] for pod in pods] == ["ray-runner"] * 2
    env = yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])["env_vars"]
    own = {"FLYRAY_CALLER_VERSION": flyray.__version__, "FLYRAY_SHIPPED": "1"}  # shipping.py
    assert env == {"ENV_VAR": "env", "RUN_VAR": "run", "BOTH": "run", **own}
    assert schema_errors(manifest) == [] and operator_violations(manifest) == []


def test_without_options_the_rayjob_is_the_one_it_was(tmp_path):
    task = make_task()
    assert render(task, tmp_path, None) == render(task, tmp_path, RunOptions())
    assert "serviceAccountName" not in str(render(task, tmp_path, None))


def test_a_job_for_an_existing_cluster_gets_them_too(tmp_path):
    env = TaskEnvironment(
        "addr_env",
        plugin_config=RayJobConfig(address="ray://head:10001"),
        env_vars={"ENV_VAR": "env", "BOTH": "env"},
    )

    def train() -> None:
        pass

    manifest = render(env.task(train), tmp_path)
    assert manifest["kind"] == "Job" and manifest["metadata"]["labels"]["team"] == "ml"
    pod = manifest["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ray-runner"
    (container,) = pod["containers"]
    env_vars = {entry["name"]: entry["value"] for entry in container["env"]}
    assert env_vars == {"ENV_VAR": "env", "BOTH": "run", "RUN_VAR": "run"}


def test_the_rehearsal_manifest_of_local_cluster_gets_them_as_well(tmp_path):
    manifest = render_for_run(
        make_task(), run_id="r01", store=RunStore(tmp_path), settings=Settings(), options=OPTIONS
    )
    assert manifest["metadata"]["labels"]["team"] == "ml"


@pytest.mark.parametrize(
    ("field", "values", "match"),
    [
        ("labels", {"flyray.io/run-id": "x"}, r"labels\['flyray.io/run-id'\] is set by flyray"),
        ("labels", {"app.kubernetes.io/managed-by": "me"}, "is set by flyray"),
        ("labels", {"team": "has spaces"}, "must be a Kubernetes label value"),
        ("labels", {"team": "x" * 64}, "must be a Kubernetes label value"),
        ("labels", {"-bad": "x"}, "must be a Kubernetes key"),
        ("labels", {"Bad_Prefix/name": "x"}, "must be a Kubernetes key"),
        ("annotations", {"bad key": "x"}, "must be a Kubernetes key"),
        ("annotations", {"flyray.io/task-name": "x"}, "is set by flyray"),
    ],
)
def test_what_kubernetes_would_refuse_is_refused(field, values, match):
    manifest = {"kind": "Job", "metadata": {}, "spec": {"template": {"spec": {"containers": []}}}}
    options = {"labels": {}, "annotations": {}, field: values}
    with pytest.raises(ConfigError, match=match):
        apply_run_options(manifest, service_account=None, **options)


def test_the_manifest_given_is_not_changed():
    manifest = {
        "kind": "Job",
        "metadata": {"labels": {"a": "1"}},
        "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}},
    }
    before = yaml.safe_dump(manifest)
    apply_run_options(
        manifest, labels={"b": "2"}, annotations={}, service_account="sa", env_vars={"X": "1"}
    )
    assert yaml.safe_dump(manifest) == before
