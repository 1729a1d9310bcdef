"""cluster mode against a head whose Python has only ``ray[default]``: flyray ships itself.

The head runs from a cached virtualenv (``flyray.sandbox.rayvenv``) with the caller's Ray
version and no flyray, and without the caller's PYTHONPATH; the job's driver imports flyray
from the site bundle in its runtime env's ``py_modules``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import ray
from click.testing import CliRunner

from flyray.cli.main import cli
from flyray.executors.localcluster.cluster import LocalRayCluster
from flyray.executors.localcluster.raystart import NodeSpec
from flyray.sandbox.rayvenv import ray_venv
from flyray.store.runstore import RunStore

pytestmark = pytest.mark.slow

SEED = """
import ray

import flyray
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig

ray_env = flyray.TaskEnvironment(
    name="ray_env",
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(), runtime_env={"py_modules": [HELPERS]}
    ),
)


@ray_env.task
def my_ray_task(n: int) -> int:
    print(f"flyray {flyray.__version__} from {flyray.__file__}", flush=True)

    @ray.remote
    def f(x):
        import seedhelpers  # a py_modules folder outside the project, zipped into the store

        return seedhelpers.square(x)

    return sum(ray.get([f.remote(i) for i in range(n)]))
"""


@pytest.fixture(scope="module")
def ray_only_venv() -> Path:
    """A virtualenv with the caller's Ray version and nothing else (built once, cached)."""
    return ray_venv(ray.__version__)


@pytest.fixture(scope="module")
def ray_only_cluster(ray_only_venv):
    """A head started from the Ray-only virtualenv; its jobs' `python` is that venv's."""
    bin_dir = ray_only_venv / "bin"
    cluster = LocalRayCluster(
        head=NodeSpec(name="head", head=True, num_cpus=2),
        dashboard=True,
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": ""},
        ray_executable=str(bin_dir / "ray"),
    )
    with cluster:
        yield cluster


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project of its own (no flyray source inside its code bundle) with the seed task, and
    a local ``py_modules`` folder outside it."""
    helpers = tmp_path / "libs" / "seedhelpers"
    helpers.mkdir(parents=True)
    (helpers / "__init__.py").write_text("def square(x):\n    return x * x\n")
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "seedproj"\n')
    (root / "seed.py").write_text(f"HELPERS = {str(helpers)!r}\n{SEED}")
    return root


def _run(cluster: LocalRayCluster, project: Path, store: Path, *flags: str):
    env = {**cluster.auth_env(), "FLYRAY_RUN_STORE": str(store)}
    argv = ["run", "--mode", "cluster", "--address", cluster.dashboard_url, *flags]
    argv += [str(project / "seed.py"), "my_ray_task", "--n", "10"]
    return CliRunner().invoke(cli, argv, env=env)


def test_the_venv_has_ray_but_no_flyray(ray_only_venv):
    python = str(ray_only_venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = [python, "-c", "import ray; print(ray.__version__); import flyray"]
    done = subprocess.run(check, capture_output=True, text=True, env=env, check=False)
    assert done.stdout.strip() == ray.__version__
    assert "No module named 'flyray'" in done.stderr


def test_seed_runs_on_a_ray_only_head(ray_only_cluster, project, tmp_path):
    store = tmp_path / "runs"
    result = _run(ray_only_cluster, project, store)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "285"
    (record,) = RunStore(store).list_records()
    log = RunStore(store).read_log(record.run_id)
    assert "/runtime_resources/py_modules_files/" in log  # flyray came from the site bundle
    bundles = {p.name for p in (store / "bundles").iterdir()}
    assert len(bundles) == 3  # the code bundle, the site bundle and seedhelpers, by sha256


def test_shipping_off_on_a_ray_only_head_says_to_turn_it_on(ray_only_cluster, project, tmp_path):
    result = _run(ray_only_cluster, project, tmp_path / "runs", "--no-ship-flyray")
    assert result.exit_code == 1
    assert "the cluster has no flyray" in result.output
    assert "--no-ship-flyray" in result.output and "FLYRAY_SHIP_FLYRAY=1" in result.output


def test_a_cluster_with_another_flyray_is_reported(ray_cluster, project, tmp_path, monkeypatch):
    """The session cluster has this venv's flyray; the caller says it has 9.9.9, shipping off."""
    import flyray
    import flyray._version
    from flyray.task.loader import load_task

    monkeypatch.setattr(flyray._version, "__version__", "9.9.9")
    for name, value in ray_cluster.auth_env().items():
        monkeypatch.setenv(name, value)
    store = tmp_path / "runs"
    context = flyray.with_runcontext(
        mode="cluster",
        address=ray_cluster.dashboard_url,
        run_store=str(store),
        ship_flyray=False,
        on_log=lambda _: None,
    )
    handle = context.run(load_task(str(project / "seed.py"), "my_ray_task"), n=4)
    assert handle.result() == 14  # a skew need not break the run: it is reported
    log = RunStore(store).read_log(handle.run_id)
    assert f"warning: this cluster's flyray is {flyray.__version__}" in log
    assert "the caller's is 9.9.9: turn shipping on" in log
