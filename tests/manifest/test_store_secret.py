"""The ``store_secret`` setting: the run store's credentials reach kuberay pods from a Secret.

Every Ray container, the submitter and a batch Job's pod get ``envFrom: secretRef``; the
manifest holds the Secret's name only, never a value of the caller's environment.
"""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from flyray import ConfigError
from flyray.cli.main import cli
from flyray.config.settings import Settings
from flyray.executors.render import render_for_run, render_kube_manifest
from flyray.manifest.serialization import dump_yaml
from flyray.plugins.ray import RayJobConfig, WorkerNodeConfig
from flyray.store.runstore import RunStore
from tests.manifest.cases import make_task, render
from tests.manifest.kuberay import schema_errors

SECRET = "flyray-run-store"
REF = {"secretRef": {"name": SECRET}}


def _containers(manifest):
    """(where, container) of every Ray container and the submitter."""
    cluster = manifest["spec"]["rayClusterSpec"]
    groups = [("head", cluster["headGroupSpec"])]
    groups += [(g["groupName"], g) for g in cluster.get("workerGroupSpecs", [])]
    found = [(name, g["template"]["spec"]["containers"][0]) for name, g in groups]
    submitter = manifest["spec"].get("submitterPodTemplate")
    if submitter:
        found.append(("submitter", submitter["spec"]["containers"][0]))
    return found


def _task(**env_kwargs):
    groups = [WorkerNodeConfig(group_name=name) for name in ("a", "b")]
    return make_task(RayJobConfig(worker_node_config=groups), **env_kwargs)


def test_every_ray_container_and_the_submitter_get_the_s3_store_secret():
    manifest = render(_task(), store_secret=SECRET)
    places = _containers(manifest)
    assert [name for name, _ in places] == ["head", "a", "b", "submitter"]
    for name, container in places:
        assert container["envFrom"] == [REF], name
    assert schema_errors(manifest) == []


def test_without_the_setting_nothing_changes():
    manifest = render(_task())
    assert "submitterPodTemplate" not in manifest["spec"]
    assert all("envFrom" not in container for _, container in _containers(manifest))


def test_the_batch_job_of_an_existing_cluster_gets_the_s3_store_secret(tmp_path):
    task = make_task(RayJobConfig(address="ray://head:10001"))
    settings = Settings.load(overrides={"run_store": "s3://b/p", "store_secret": SECRET})
    job = render_kube_manifest(
        task, run_id="r1", store=RunStore(tmp_path), settings=settings, store_bundle=False
    )
    assert job["kind"] == "Job"
    assert job["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [REF]


def test_local_cluster_manifests_leave_the_secret_out(tmp_path):
    settings = Settings.load(overrides={"store_secret": SECRET})
    manifest = render_for_run(
        _task(),
        run_id="r1",
        store=RunStore(tmp_path),
        settings=settings,
        mode="local-cluster",
        store_bundle=False,
    )
    assert all("envFrom" not in container for _, container in _containers(manifest))


def test_the_manifest_holds_no_value_of_the_callers_s3_credentials(tmp_path, monkeypatch):
    values = {"AWS_ACCESS_KEY_ID": "AKIAVALUENOTPASTED00", "AWS_SECRET_ACCESS_KEY": "s3cr3t-v4lue"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load(overrides={"store_secret": SECRET})
    text = dump_yaml(
        render_for_run(
            _task(), run_id="r1", store=RunStore(tmp_path), settings=settings, store_bundle=False
        )
    )
    assert SECRET in text
    assert not [value for value in values.values() if value in text]


def test_the_setting_comes_from_the_env_and_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYRAY_STORE_SECRET", "from-env")
    assert Settings.load(cwd=tmp_path).store_secret == "from-env"
    assert Settings.load(cwd=tmp_path).sources["store_secret"] == "env FLYRAY_STORE_SECRET"
    task_file = tmp_path / "tasks.py"
    task_file.write_text(
        "import flyray\n"
        "from flyray.plugins.ray import RayJobConfig\n"
        "env = flyray.TaskEnvironment('s3_env', plugin_config=RayJobConfig())\n"
        "@env.task\n"
        "def t() -> int:\n"
        "    return 1\n"
    )
    argv = ["render", "--run-store", "s3://b/p", "--store-secret", "from-flag", str(task_file), "t"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    head = yaml.safe_load(result.stdout)["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert head["template"]["spec"]["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "from-flag"}}
    ]


@pytest.mark.parametrize("name", ["Bad_Name", "-x", "a..b", "x" * 254, ""])
def test_a_secret_name_kubernetes_refuses_is_refused(name):
    with pytest.raises(ConfigError) as info:
        Settings.load(overrides={"store_secret": name})
    assert "store_secret (from flag)" in str(info.value) and "DNS-1123 subdomain" in str(info.value)
