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
    remote_env = flyray.TaskEnvironment(
        "remote_env", plugin_config=RayJobConfig(address="ray://head:10001")
    )


    @ray_env.task
    def train(n: int, label: str = "x") -> int:
        """Train on n items."""
        return n


    @plain_env.task
    def plain() -> int:
        return 1


    @remote_env.task
    def remote(n: int, output: str = "x") -> int:
        return n
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


def render(
    project: Path, store_dir: str, *args: str, task: str = "train", after: tuple[str, ...] = ()
) -> Result:
    """``flyray render --run-store STORE [args] project/tasks.py TASK [after]``."""
    argv = ["render", "--run-store", store_dir, *args, str(project / "tasks.py"), task, *after]
    return CliRunner().invoke(cli, argv)


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


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (nothing if it does not exist)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_render_writes_nothing_to_the_run_store(project, store_dir):
    result = render(project, store_dir, "--run-id", "r1")
    assert result.exit_code == 0, result.output
    assert not Path(store_dir).exists()
    runtime_env = yaml.safe_load(yaml.safe_load(result.stdout)["spec"]["runtimeEnvYAML"])
    assert runtime_env["working_dir"].startswith(RunStore(store_dir).uri("bundles") + "/")
    executor = LocalClusterExecutor(Settings.load(overrides={"run_store": store_dir}))
    executor.submit(load_task(str(project / "tasks.py"), "train"), (), {"n": 3}, run_id="r2")
    before = files_under(Path(store_dir))
    for task in ("train", "remote"):
        assert render(project, store_dir, "--run-id", "r3", task=task).exit_code == 0
    assert files_under(Path(store_dir)) == before and RunStore(store_dir).read_manifest("r2")


def test_the_bundle_is_named_by_its_content(project, store_dir):
    def working_dir() -> str:
        spec = yaml.safe_load(render(project, store_dir, "--run-id", "r1").stdout)["spec"]
        return yaml.safe_load(spec["runtimeEnvYAML"])["working_dir"]

    first = working_dir()
    assert working_dir() == first
    (project / "helper.py").write_text("X = 1\n")
    assert working_dir() != first


def test_the_manifest_is_the_one_a_run_submits(project, store_dir):
    rendered = render(project, store_dir, "--run-id", "r1").stdout  # before the bundle is stored
    executor = LocalClusterExecutor(Settings.load(overrides={"run_store": store_dir}))
    executor.submit(load_task(str(project / "tasks.py"), "train"), (), {"n": 3}, run_id="r1")
    submitted = RunStore(store_dir).read_manifest("r1")
    assert rendered == submitted
    runtime_env = yaml.safe_load(yaml.safe_load(submitted)["spec"]["runtimeEnvYAML"])
    stored = sorted(p.as_uri() for p in (Path(store_dir) / "bundles").iterdir())
    assert stored == sorted([runtime_env["working_dir"], *runtime_env["py_modules"]])


def test_a_task_on_an_existing_cluster_is_a_job_that_fetches_the_bundle(project, store_dir):
    result = render(project, store_dir, "--run-id", "r1", task="remote")
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(result.stdout)
    assert manifest["kind"] == "Job"
    command = " ".join(manifest["spec"]["template"]["spec"]["containers"][0]["command"])
    assert f"--bundle {RunStore(store_dir).uri('bundles')}/" in command
    assert not Path(store_dir).exists()


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


def test_task_parameters_are_optional_and_checked_when_given(project, store_dir):
    without = render(project, store_dir, "--run-id", "r1")
    with_them = render(project, store_dir, "--run-id", "r1", after=("--n", "3", "--label", "y"))
    assert without.exit_code == 0, without.output
    assert with_them.stdout == without.stdout  # they do not change the manifest
    argv = ["render", "--run-store", store_dir, str(project / "tasks.py"), "train", "--n", "x"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2 and "'x' is not a valid integer" in result.output
    help_text = CliRunner().invoke(cli, [*argv[:5], "--help"]).output
    assert "--n" in help_text and "--label" in help_text and "required" not in help_text


@pytest.mark.parametrize(
    "argv",
    [
        ["-o", "json", "{file}", "train"],
        ["{file}", "train", "-o", "json"],
        ["{file}", "-o", "json", "train"],
        ["{file}", "train", "--n", "3", "--output", "json", "--label", "y"],
        ["--output", "yaml", "{file}", "train", "--output=json"],  # the last one given counts
    ],
)
def test_options_anywhere_on_the_line(project, store_dir, argv):
    line = [a.replace("{file}", str(project / "tasks.py")) for a in argv]
    result = CliRunner().invoke(cli, ["render", *line, "--run-store", store_dir, "--run-id", "r1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metadata"]["name"].endswith("-r1")
    assert not Path(store_dir).exists()


def test_an_option_given_before_file_is_kept_when_later_parts_do_not_repeat_it(project, store_dir):
    argv = ["render", "-o", "json", "--image", "example.com/ray:1", str(project / "tasks.py")]
    result = CliRunner().invoke(cli, [*argv, "train", "--run-store", store_dir])
    assert result.exit_code == 0, result.output
    spec = json.loads(result.stdout)["spec"]["rayClusterSpec"]
    assert (
        spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] == "example.com/ray:1"
    )


def test_output_yaml_is_the_default(project, store_dir):
    as_default = render(project, store_dir, "--run-id", "r1")
    as_yaml = render(project, store_dir, "--run-id", "r1", "--output", "yaml")
    assert as_yaml.exit_code == 0 and as_yaml.stdout == as_default.stdout
    assert yaml.safe_load(as_yaml.stdout)["kind"] == "RayJob"


def test_a_task_parameter_keeps_its_flag_and_the_option_goes_before_file(project, store_dir):
    args = ("--run-id", "r1", "-o", "json")
    result = render(project, store_dir, *args, task="remote", after=("--output", "z"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kind"] == "Job"  # --output z was the task's parameter
    result = render(project, store_dir, task="remote", after=("-o", "json"))
    assert result.exit_code == 2 and "No such option '-o'" in result.output


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_bad_output_format_is_one_error_line(project, store_dir, where):
    bad = ["-o", "xml"]
    argv = (
        [*bad, str(project / "tasks.py"), "train"]
        if where == "before"
        else [str(project / "tasks.py"), "train", *bad]
    )
    result = CliRunner().invoke(cli, ["render", *argv, "--run-store", store_dir])
    assert result.exit_code == 2 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert errors == [
        "Error: Invalid value for '-o' / '--output': 'xml' is not one of 'yaml', 'json'."
    ]


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


def test_help_says_parameters_are_optional_and_nothing_is_written():
    help_text = " ".join(CliRunner().invoke(cli, ["render", "--help"]).output.split())
    assert "Task parameters are optional: given ones are checked" in help_text
    assert "rendering writes nothing" in help_text
