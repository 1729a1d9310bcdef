import asyncio
import inspect
from datetime import timedelta

import pytest

import flyray
from flyray import ConfigError, PluginNotFoundError, Resources, TaskEnvironment
from flyray.task.registry import register_plugin, task_type_for


def test_spec_names_accepted_and_dns_name_derived():
    env = TaskEnvironment(name="ray_env")
    assert env.dns_name == "ray-env"


def test_bare_decorator_keeps_signature_hints_and_docstring():
    env = TaskEnvironment("plain")

    @env.task
    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    assert isinstance(add, flyray.FunctionTask)
    assert add.name == "plain.add"
    assert add.__doc__ == "Add two numbers."
    assert str(inspect.signature(add)) == "(a: int, b: int = 2) -> int"
    assert add.__annotations__ == {"a": int, "b": int, "return": int}
    assert add(1) == 3
    assert env.tasks == {"add": add}


def test_decorator_with_arguments_and_async_function():
    env = TaskEnvironment("plain")

    @env.task(short_name="renamed", retries=2, timeout=timedelta(minutes=1))
    async def double(x: int) -> int:
        return 2 * x

    assert (double.short_name, double.retries, double.timeout) == ("renamed", 2, 60.0)
    assert double.is_async and inspect.iscoroutinefunction(double.func)
    coro = double(4)
    assert inspect.iscoroutine(coro)
    assert asyncio.run(coro) == 8


def test_retries_rerun_a_failing_task():
    env = TaskEnvironment("plain")
    calls = []

    @env.task(retries=2)
    def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return len(calls)

    assert flaky() == 3


def test_timeout_interrupts_a_local_run():
    env = TaskEnvironment("plain")

    @env.task(timeout=0.2)
    def spin() -> None:
        while True:
            pass

    with pytest.raises(flyray.TaskTimeoutError, match=r"0\.2 s"):
        spin()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "Ray Env"}, "TaskEnvironment.name"),
        ({"name": "ok", "image": ""}, "TaskEnvironment.image"),
        ({"name": "ok", "resources": {"cpu": 1}}, "TaskEnvironment.resources"),
        ({"name": "ok", "env_vars": {"1BAD": "x"}}, "TaskEnvironment.env_vars['1BAD']"),
        ({"name": "ok", "env_vars": {"A": 1}}, "TaskEnvironment.env_vars['A']"),
    ],
)
def test_environment_rejects(kwargs, field):
    with pytest.raises(ConfigError) as info:
        TaskEnvironment(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"retries": -1}, "task.retries"),
        ({"timeout": -1}, "task.timeout"),
        ({"short_name": "  "}, "task.short_name"),
    ],
)
def test_task_options_rejected(options, field):
    env = TaskEnvironment("plain")
    with pytest.raises(ConfigError) as info:
        env.task(**options)(_noop)
    assert info.value.field == field


def _noop() -> None:
    pass


class UnknownConfig:
    pass


def test_unregistered_plugin_config_is_a_clear_error():
    with pytest.raises(PluginNotFoundError) as info:
        TaskEnvironment("x", plugin_config=UnknownConfig())
    message = str(info.value)
    assert "TaskEnvironment.plugin_config" in message
    assert "UnknownConfig" in message and "RayJobConfig" in message


def test_third_party_plugin_registration():
    class SparkConfig:
        pass

    class SparkTask(flyray.FunctionTask):
        pass

    register_plugin(SparkConfig, SparkTask)
    env = TaskEnvironment("spark", plugin_config=SparkConfig())
    assert isinstance(env.task(_noop), SparkTask)
    with pytest.raises(TypeError):
        register_plugin(SparkConfig, object)


def test_ray_plugin_is_found_through_its_entry_point():
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="flyray.plugins") if e.name == "ray"]
    module = entry.load()
    assert task_type_for(module.RayJobConfig(worker_node_config=[])) is module.RayFunctionTask


def test_resources_on_environment():
    env = TaskEnvironment("x", resources=Resources(cpu=1))
    assert env.resources.cpus == 1
