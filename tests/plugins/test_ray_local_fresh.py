"""local mode, no Ray running: pre() starts Ray with the config's runtime_env, post() stops it."""

import json
import os

import pytest

import flyray
from flyray.plugins.ray import RayJobConfig, WorkerNodeConfig
from tests.procs import wait_until_gone

ray = pytest.importorskip("ray")

env = flyray.TaskEnvironment(
    name="fresh_env",
    plugin_config=RayJobConfig(
        worker_node_config=[WorkerNodeConfig(group_name="workers", replicas=1)],
        runtime_env={"env_vars": {"FROM_RUNTIME_ENV": "runtime"}},
    ),
    env_vars={"FROM_TASK_ENV": "task"},
)


@env.task
async def squares_and_env(n: int) -> dict:
    @ray.remote
    def f(x):
        return x * x

    @ray.remote
    def read_env():
        return os.environ.get("FROM_RUNTIME_ENV"), os.environ.get("FROM_TASK_ENV")

    return {
        "sum": sum(ray.get([f.remote(i) for i in range(n)])),
        "worker_env": ray.get(read_env.remote()),
        "driver_env": os.environ.get("FROM_TASK_ENV"),
    }


def test_run_starts_ray_applies_runtime_env_and_stops_it(ray_tmpdir):
    assert not ray.is_initialized(), "another test left Ray initialised in this process"
    handle = flyray.run(squares_and_env, n=10)
    assert handle.status == flyray.RunStatus.SUCCEEDED and handle.mode == "local"
    assert handle.result() == {
        "sum": 285,
        "worker_env": ("runtime", "task"),
        "driver_env": "task",
    }
    assert not ray.is_initialized()
    assert "FROM_TASK_ENV" not in os.environ
    assert wait_until_gone(ray_tmpdir) == []


def test_unknown_mode_lists_valid_ones():
    with pytest.raises(flyray.ConfigError) as info:
        flyray.with_runcontext(mode="elsewhere")
    assert str(info.value).startswith("mode must be one of: local, local-cluster, cluster")
    assert str(info.value).endswith("got 'elsewhere'")


def test_fresh_is_an_option_of_local_cluster_mode_only():
    executor = flyray.with_runcontext(mode="local-cluster", fresh=True).executor()
    assert executor.fresh is True
    with pytest.raises(flyray.ConfigError, match="fresh is not available in cluster mode"):
        flyray.with_runcontext(mode="cluster", fresh=True).executor()


def test_run_refuses_plain_functions():
    with pytest.raises(flyray.ConfigError, match="task must be a task made with"):
        flyray.run(print, 1)


def test_in_cluster_runtime_env_ships_the_working_dir(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert "working_dir" not in squares_and_env.runtime_env()
    monkeypatch.setenv("FLYRAY_IN_CLUSTER", "1")
    runtime_env = squares_and_env.runtime_env()
    assert runtime_env["working_dir"] == str(tmp_path)
    for pattern in ("script_mode.tar.gz", ".python_history", ".git/", "__pycache__/"):
        assert pattern in runtime_env["excludes"]
    assert runtime_env["env_vars"] == {"FROM_RUNTIME_ENV": "runtime", "FROM_TASK_ENV": "task"}


def test_in_cluster_leaves_out_what_the_job_already_carries(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLYRAY_IN_CLUSTER", "1")
    job = {"runtime_env": {"working_dir": "file:///store/bundles/x.zip", "env_vars": {"A": "1"}}}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(job))
    assert squares_and_env.runtime_env() == {}


@env.task
async def use_an_actor(tag: str, started=None, wait_for=None) -> str:
    @ray.remote
    class Echo:
        def say(self, text: str) -> str:
            return text

    actor = Echo.remote()
    assert ray.get(actor.say.remote("ready")) == "ready"
    if started is not None:
        started.set()
    if wait_for is not None:
        await wait_for.wait()
    return ray.get(actor.say.remote(tag))


def test_concurrent_calls_share_ray_until_the_last_one_finishes(ray_tmpdir):
    """The first call to finish must not shut Ray down under the second one's actor."""
    import asyncio

    assert not ray.is_initialized(), "another test left Ray initialised in this process"

    async def main() -> list[str]:
        second_started, first_done = asyncio.Event(), asyncio.Event()

        async def first() -> str:
            result = await use_an_actor("first", wait_for=second_started)
            first_done.set()
            return result

        second = use_an_actor("second", started=second_started, wait_for=first_done)
        return await asyncio.gather(first(), second)

    assert asyncio.run(main()) == ["first", "second"]
    assert not ray.is_initialized()
    assert wait_until_gone(ray_tmpdir) == []


gpu_typed_env = flyray.TaskEnvironment(
    name="typed_env",
    plugin_config=RayJobConfig(
        worker_node_config=[
            WorkerNodeConfig(
                group_name="gpus", replicas=1, requests=flyray.Resources(cpu=1, gpu="T4:1")
            )
        ]
    ),
)


@gpu_typed_env.task
def schedules_on_t4() -> tuple[float, str]:
    @ray.remote(accelerator_type="T4", num_gpus=0)
    def where() -> str:
        return "scheduled"

    return ray.cluster_resources().get("accelerator_type:T4", 0.0), ray.get(where.remote())


def test_a_gpu_type_is_declared_on_the_local_ray_that_pre_starts(ray_tmpdir):
    assert not ray.is_initialized(), "another test left Ray initialised in this process"
    assert schedules_on_t4() == (1.0, "scheduled")
    assert not ray.is_initialized()
