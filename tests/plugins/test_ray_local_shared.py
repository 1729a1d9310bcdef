"""local mode inside a process where Ray is already initialised: pre() joins, post() leaves it."""

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

import flyray
from flyray.plugins.ray import RayJobConfig
from flyray.task.loader import load_task

ray = pytest.importorskip("ray")

my_ray_task = load_task(str(Path(__file__).parents[2] / "examples" / "seed.py"), "my_ray_task")


@pytest.fixture(scope="module")
def ray_already_running():
    temp_dir = tempfile.mkdtemp(prefix="fr-")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir)
    yield temp_dir
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


env = flyray.TaskEnvironment(name="shared_env", plugin_config=RayJobConfig())


@env.task
def fails_remotely() -> None:
    @ray.remote
    def boom():
        raise KeyError("missing-key")

    ray.get(boom.remote())


@env.task
def fails_locally(x: int) -> None:
    raise ValueError(f"x must be positive, got {x}")


def test_direct_call_of_async_task(ray_already_running):
    assert asyncio.run(my_ray_task(10)) == 285
    assert ray.is_initialized(), "post() must not stop a Ray it did not start"


def test_run_and_runcontext(ray_already_running):
    assert flyray.run(my_ray_task, 10).result() == 285
    assert flyray.with_runcontext(mode="local").run(my_ray_task, n=4).result() == 14
    assert ray.is_initialized()


def test_task_error_keeps_its_type_and_message(ray_already_running):
    with pytest.raises(ValueError, match="x must be positive, got -1"):
        flyray.run(fails_locally, -1)
    with pytest.raises(KeyError, match="missing-key"):
        flyray.run(fails_remotely)
    assert ray.is_initialized()
