"""``flyray render``: the RayJob a run would create, as YAML or JSON, from a task file."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from flyray.cli.main import cli
from flyray.config.ray_images import default_image
from flyray.config.settings import Settings
from flyray.executors.localcluster.executor import LocalClusterExecutor
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task

TASKS = textwrap.dedent(
    '''
    import flyray
    from flyray import Resources
    from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

    ray_env = flyray.TaskEnvironment(
        name="render_env",
        plugin_config=RayJobConfig(
            head_node_config=HeadNodeConfig(requests=Resources(cpu="1", memory="2Gi")),
            worker_node_config=[WorkerNodeConfig(group_name="cpu", replicas=2)],
        ),
    )
    plain_env = flyray.TaskEnvironment("plain_env")


    @ray_env.task
    def train(n: int, label: str = "x") -> int:
        """Train on n items."""
        return n


    @plain_env.task
    def plain() -> int:
        return 1
    '''
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with a pyproject.toml and a task file using RayJobConfig."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0"\n')
    (root / "tasks.py").write_text(TASKS)
    return root


@pytest.fixture
def store_dir(tmp_path: Path) -> str:
    return str(tmp_path / "store")


def render(project: Path, store_dir: str, *args: str, task: str = "train") -> Result:
    """``flyray render --run-store STORE [args] project/tasks.py TASK --n 3``."""
    argv = ["render", "--run-store", store_dir, *args, str(project / "tasks.py"), task]
    return CliRunner().invoke(cli, argv + (["--n", "3"] if task == "train" else []))


def test_yaml_is_a_rayjob_that_runs_the_task(project, store_dir):
    result = render(project, store_dir, "--run-id", "r0123456789")
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(result.stdout)
    assert manifest["kind"] == "RayJob" and manifest["apiVersion"] == "ray.io/v1"
    assert manifest["metadata"]["name"].endswith("-r0123456789")
    entrypoint = manifest["spec"]["entrypoint"]
    assert "flyray.entrypoint" in entrypoint and "--task render_env.train" in entrypoint
    assert "--run-id r0123456789" in entrypoint and "--file tasks.py" in entrypoint
    assert "runtimeEnvYAML" in manifest["spec"] and "runtimeEnv" not in manifest["spec"]


def test_the_code_bundle_is_stored_once_and_is_the_working_dir(project, store_dir):
    first = yaml.safe_load(render(project, store_dir, "--run-id", "r1").stdout)
    second = yaml.safe_load(render(project, store_dir, "--run-id", "r2").stdout)
    runtime_env = yaml.safe_load(first["spec"]["runtimeEnvYAML"])
    assert runtime_env == yaml.safe_load(second["spec"]["runtimeEnvYAML"])
    bundles = list((Path(store_dir) / "bundles").iterdir())
    assert len(bundles) == 1 and runtime_env["working_dir"] == bundles[0].as_uri()
    assert RunStore(store_dir).list_records() == []  # rendering is not a run


def test_the_manifest_is_the_one_a_run_submits(project, store_dir):
    executor = LocalClusterExecutor(Settings.load(overrides={"run_store": store_dir}))
    executor.submit(load_task(str(project / "tasks.py"), "train"), (), {"n": 3}, run_id="r1")
    submitted = RunStore(store_dir).read_manifest("r1")
    assert render(project, store_dir, "--run-id", "r1").stdout == submitted


def test_json_output_parses_to_the_same_manifest(project, store_dir):
    as_yaml = render(project, store_dir, "--run-id", "r1")
    as_json = render(project, store_dir, "--run-id", "r1", "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == yaml.safe_load(as_yaml.stdout)


def test_a_new_run_id_by_default(project, store_dir):
    names = {yaml.safe_load(render(project, store_dir).stdout)["metadata"]["name"] for _ in "ab"}
    assert len(names) == 2


def test_old_kuberay_gets_the_base64_runtime_env(project, store_dir):
    result = render(project, store_dir, "--kuberay-version", "1.0.0")
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(result.stdout)["spec"]
    assert "runtimeEnv" in spec and "runtimeEnvYAML" not in spec


def test_kuberay_version_from_flag_setting_or_default(project, store_dir, monkeypatch):
    def cluster(*args: str) -> dict:
        result = render(project, store_dir, *args)
        assert result.exit_code == 0, result.output
        return yaml.safe_load(result.stdout)["spec"]["rayClusterSpec"]

    assert cluster()["authOptions"] == {"mode": "token"}  # 1.7.0: Ray token authentication
    monkeypatch.setenv("FLYRAY_KUBERAY_VERSION", "1.5.0")
    assert "authOptions" not in cluster()  # KubeRay 1.5 has no authOptions
    assert cluster("--kuberay-version", "1.6.0")["authOptions"] == {"mode": "token"}


def test_image_from_flag_settings_or_default(project, store_dir, monkeypatch):
    def image() -> str:
        spec = yaml.safe_load(render(project, store_dir, *args).stdout)["spec"]
        return spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]

    args: tuple[str, ...] = ()
    assert image() == default_image()
    (project / "pyproject.toml").write_text('[tool.flyray]\nimage = "example.com/ray:from-toml"\n')
    monkeypatch.chdir(project)
    assert image() == "example.com/ray:from-toml"
    args = ("--image", "example.com/ray:from-flag")
    assert image() == "example.com/ray:from-flag"


def test_task_parameters_are_parsed(project, store_dir):
    argv = ["render", "--run-store", store_dir, str(project / "tasks.py"), "train", "--n", "x"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2 and "'x' is not a valid integer" in result.output
    help_text = CliRunner().invoke(cli, [*argv[:5], "--help"]).output
    assert "--n" in help_text and "--label" in help_text


def test_a_plain_task_has_no_rayjob(project, store_dir):
    result = render(project, store_dir, task="plain")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Error: task 'plain_env.plain' is not a Ray task, so it has no RayJob" in result.stderr
    assert "plugin_config=RayJobConfig(...)" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kuberay-version", "latest"), "kuberay_version must be a version"),
        (("--kuberay-version", "0.6.0"), "does not serve ray.io/v1 RayJobs"),
        (("--run-id", "Bad_Id"), "run_id must be at most"),
    ],
)
def test_bad_options_are_one_error_line(project, store_dir, args, message):
    result = render(project, store_dir, *args)
    assert result.exit_code == 1 and result.stderr.startswith("Error: ")
    assert message in result.stderr and "Traceback" not in result.output


def test_help_says_parameters_do_not_change_the_manifest():
    help_text = " ".join(CliRunner().invoke(cli, ["render", "--help"]).output.split())
    assert "parameters are checked but do not change the manifest" in help_text
