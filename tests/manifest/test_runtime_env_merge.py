"""What flyray adds to a task's runtime env, and what it keeps of the user's.

flyray's code bundle is the job's ``working_dir``: a user's local ``working_dir`` becomes the
bundle's root and their ``excludes`` leave files out of it; a remote one is refused. Every other
key passes through (``py_modules`` untouched), env vars merge, and a requirements file is read
here, where Ray would read it, so the manifest carries the packages.
"""

from __future__ import annotations

import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

from flyray import ConfigError
from flyray.config.settings import Settings
from flyray.executors.render import render_for_run, render_kube_manifest
from flyray.store.bundle import BUNDLE_TOP
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task

TASK = """
import flyray
from flyray.plugins.ray import RayJobConfig

env = flyray.TaskEnvironment(
    name="merge_env",
    plugin_config=RayJobConfig(runtime_env={runtime_env!r}),
    env_vars={{"FROM_ENV": "env"}},
)


@env.task
def work() -> None:
    pass
"""


def project(tmp_path: Path, runtime_env: dict) -> Path:
    """A project whose task (app/task.py) has ``runtime_env``; the current directory is it."""
    root = tmp_path / "project"
    files = {
        "pyproject.toml": "[project]\nname = 'p'\n",
        "app/task.py": textwrap.dedent(TASK).format(runtime_env=runtime_env),
        "app/data/rows.csv": "a,b\n",
        "app/helper.py": "X = 1\n",
        "notes.txt": "outside app/\n",
        "requirements.txt": "pyjokes==0.8.3\nhumanize\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def render(root: Path, tmp_path: Path, mode: str = "local-cluster") -> tuple[dict, dict, list]:
    """(the RayJob, its runtime env, the names in its stored bundle)."""
    store = RunStore(tmp_path / "runs")
    task = load_task(str(root / "app" / "task.py"), "work")
    if mode == "kuberay":
        manifest = render_kube_manifest(task, run_id="r1", store=store, settings=Settings())
    else:
        manifest = render_for_run(task, run_id="r1", store=store, settings=Settings(), mode=mode)
    env = yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])
    zip_path = store.local_path() / "bundles" / env["working_dir"].rsplit("/", 1)[-1]
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(name.removeprefix(f"{BUNDLE_TOP}/") for name in archive.namelist())
    return manifest, env, names


@pytest.mark.parametrize("mode", ["local-cluster", "kuberay"])
def test_the_users_keys_pass_through(tmp_path, monkeypatch, mode):
    user = {
        "pip": {"packages": ["pyjokes==0.8.3"], "pip_check": False},
        "py_modules": ["app", "s3://bucket/lib.whl"],
        "env_vars": {"FROM_CONFIG": "config"},
        "config": {"setup_timeout_seconds": 900},
    }
    root = project(tmp_path, user)
    monkeypatch.chdir(root)
    _, env, names = render(root, tmp_path, mode)
    assert env["pip"] == user["pip"]
    # the shipping step made the local folder a zip in the store; URIs stay as they are
    assert "s3://bucket/lib.whl" in env["py_modules"] and "app" not in env["py_modules"]
    assert env["config"] == {"setup_timeout_seconds": 900}
    assert {k: env["env_vars"][k] for k in ("FROM_CONFIG", "FROM_ENV")} == {
        "FROM_CONFIG": "config",
        "FROM_ENV": "env",
    }
    assert env["working_dir"].endswith(".zip") and "app/task.py" in names


def test_a_requirements_file_is_read_into_the_manifest(tmp_path, monkeypatch):
    root = project(tmp_path, {"uv": "requirements.txt"})
    monkeypatch.chdir(root)
    _, env, _ = render(root, tmp_path)
    assert env["uv"] == ["pyjokes==0.8.3", "humanize"]


def test_a_local_working_dir_is_the_bundles_root_and_excludes_apply(tmp_path, monkeypatch):
    root = project(tmp_path, {"working_dir": "app", "excludes": ["*.csv"]})
    monkeypatch.chdir(root)
    manifest, env, names = render(root, tmp_path)
    assert names == ["helper.py", "task.py"]  # no notes.txt, no data/rows.csv
    argv = manifest["spec"]["entrypoint"].split()
    assert argv[argv.index("--file") + 1] == "task.py"
    assert env["excludes"] == ["*.csv"]  # kept: Ray ignores it for a zip URI


def test_excludes_that_leave_out_the_task_file_are_refused(tmp_path, monkeypatch):
    root = project(tmp_path, {"excludes": ["app/"]})
    monkeypatch.chdir(root)
    with pytest.raises(Exception, match=r"runtime_env\['excludes'\]"):
        render(root, tmp_path)


@pytest.mark.parametrize(
    ("working_dir", "rule"),
    [
        ("s3://bucket/code.zip", "flyray ships the task's code as the job's working_dir"),
        ("nowhere", "must be an existing"),
        ("elsewhere", "must contain the task file"),
    ],
)
def test_working_dirs_flyray_cannot_use_are_refused(tmp_path, monkeypatch, working_dir, rule):
    root = project(tmp_path, {"working_dir": working_dir})
    (tmp_path / "project" / "elsewhere").mkdir()
    monkeypatch.chdir(root)
    with pytest.raises(ConfigError) as info:
        render(root, tmp_path)
    assert info.value.field == "runtime_env['working_dir']" and rule in info.value.rule
