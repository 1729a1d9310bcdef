"""Flyte's task options, task objects (.aio, .override), policies and errors, in local mode."""

from __future__ import annotations

import asyncio
import threading
import warnings
from datetime import timedelta

import pytest

import flyray
from flyray import errors
from flyray.plugins.ray import RayJobConfig, WorkerNodeConfig
from flyray.warn import FlyrayWarning

env = flyray.TaskEnvironment(name="options_env")
attempts: list[str] = []


@env.task(retries=flyray.RetryStrategy(count=2, backoff=flyray.Backoff(base=timedelta(0))))
def flaky(fail_times: int) -> int:
    attempts.append("flaky")
    if len(attempts) <= fail_times:
        raise ValueError(f"attempt {len(attempts)} failed")
    return len(attempts)


@env.task(retries=3)
def hopeless() -> None:
    attempts.append("hopeless")
    raise errors.NonRecoverableError("do not retry me")


@env.task(short_name="renamed", timeout=0)
def plain(x: int) -> int:
    return x + 1


barrier = threading.Barrier(2, timeout=30)


@env.task
def meet(x: int) -> int:
    barrier.wait()  # both calls must be running at once to pass
    return x


@pytest.fixture(autouse=True)
def _fresh_attempts():
    attempts.clear()


def test_retry_strategy_retries_with_its_backoff():
    assert flaky(2) == 3
    assert attempts == ["flaky"] * 3


def test_non_recoverable_error_is_not_retried():
    with pytest.raises(errors.NonRecoverableError, match="do not retry me"):
        hopeless()
    assert attempts == ["hopeless"]


def test_a_failed_task_is_its_own_type_and_flytes_runtime_user_error():
    with pytest.raises(ValueError, match="attempt 3 failed") as info:
        flaky(5)
    error = info.value
    assert isinstance(error, errors.RuntimeUserError)
    assert isinstance(error, flyray.FlyrayError)
    assert (error.code, error.kind) == ("ValueError", "user")
    assert repr(error) == "ValueError('attempt 3 failed')"
    attempts.clear()
    with pytest.raises(errors.RuntimeUserError):
        flyray.run(flaky, 5)


def test_short_name_and_zero_timeout_mean_what_flyte_says():
    assert plain.short_name == "renamed" and plain.name == "options_env.plain"
    assert plain.timeout is None
    assert plain(1) == 2


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [
        (5, 5.0),
        (timedelta(minutes=1), 60.0),
        (flyray.Timeout(max_runtime=30, deadline=timedelta(seconds=20)), 20.0),
        (flyray.Timeout(max_queued_time=10), None),
        (flyray.Timeout(), None),
    ],
)
def test_timeout_forms(timeout, seconds):
    def job() -> None:
        pass

    assert env.task(timeout=timeout)(job).timeout == seconds


def test_aio_runs_sync_tasks_concurrently_from_async_code():
    async def main() -> list[int]:
        return await asyncio.gather(meet.aio(1), meet.aio(2))

    assert asyncio.run(main()) == [1, 2]


def test_override_changes_a_copy():
    heavier = plain.override(retries=2, resources=flyray.Resources(cpu="2"), env_vars={"A": "1"})
    assert (heavier.retries, heavier.env.resources.cpu, heavier.env.env_vars) == (
        2,
        "2",
        {"A": "1"},
    )
    assert (plain.retries, plain.env.resources, plain.env.env_vars) == (0, None, None)
    assert heavier(1) == 2 and heavier.name == plain.name
    with pytest.raises(flyray.ConfigError, match=r"task\.override"):
        plain.override(colour="blue")


@pytest.mark.parametrize(
    ("policy", "config", "fragment"),
    [
        (flyray.ReusePolicy(replicas=(1, 3), idle_ttl=600), {}, "exactly 1 replica"),
        (flyray.ReusePolicy(replicas=1, concurrency=2), {}, "concurrency"),
        (flyray.ReusePolicy(replicas=1), {"shutdown_after_job_finishes": True}, "outlive"),
        (flyray.ReusePolicy(replicas=1), {"ttl_seconds_after_finished": 0}, "idle_ttl"),
    ],
)
def test_reuse_policy_conflicts_are_flytes_runtime_user_errors(policy, config, fragment):
    ray_env = flyray.TaskEnvironment(
        name="reused",
        plugin_config=RayJobConfig(worker_node_config=[], **config),
        reusable=policy,
    )
    with pytest.raises(errors.RuntimeUserError, match=fragment) as info:
        ray_env.task(_job)
    assert isinstance(info.value, flyray.ConfigError) and info.value.code == "BadConfiguration"


def test_a_reuse_policy_reuses_the_cluster_for_its_idle_ttl():
    ray_env = flyray.TaskEnvironment(
        name="reused",
        plugin_config=RayJobConfig(worker_node_config=[]),
        reusable=flyray.ReusePolicy(replicas=1, idle_ttl=600),
    )
    task = ray_env.task(_job)
    assert task.reuses_cluster
    assert "reusePolicy" not in task.custom_config() and "rayClusterSpec" in task.custom_config()


def test_reuse_needs_a_plugin_that_supports_it():
    class Other:
        pass

    flyray.register_plugin(Other, flyray.FunctionTask)
    with pytest.raises(flyray.ConfigError, match="cannot go with a plugin_config"):
        flyray.TaskEnvironment(name="x", plugin_config=Other(), reusable=flyray.ReusePolicy())


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: flyray.RetryStrategy(count=-1), "RetryStrategy.count"),
        (lambda: flyray.Backoff(base=timedelta(1), factor=2.0), "Backoff.cap"),
        (lambda: flyray.Timeout(max_runtime=-5), "Timeout.max_runtime"),
        (lambda: flyray.ReusePolicy(idle_ttl=10), "ReusePolicy.idle_ttl"),
        (lambda: flyray.ReusePolicy(replicas=(3, 1)), "ReusePolicy.replicas"),
        (lambda: flyray.Cache("sometimes"), "Cache.behavior"),
        (
            lambda: flyray.TaskEnvironment("e", depends_on=["other"]),
            "TaskEnvironment.depends_on[0]",
        ),
        (lambda: flyray.TaskEnvironment("e", include="a.txt"), "TaskEnvironment.include"),
        (lambda: flyray.TaskEnvironment("e", cache="always"), "TaskEnvironment.cache"),
    ],
)
def test_bad_policies_name_the_field(factory, field):
    with pytest.raises(flyray.ConfigError) as info:
        factory()
    assert info.value.field == field


def test_settings_without_effect_warn_once_per_task_and_mode():
    quiet = flyray.TaskEnvironment(
        name="warned_env", service_account="runner", cache="auto", interruptible=True
    )
    task = quiet.task(_job)
    with pytest.warns(FlyrayWarning) as caught:
        task()
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 3
    assert "service_account has no effect in local mode" in messages[2]
    assert "cache has no effect" in messages[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        task()  # said once already


def test_service_account_and_environment_pod_template_reach_the_ray_pods():
    ray_env = flyray.TaskEnvironment(
        name="kube_env",
        plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig("w", replicas=1)]),
        service_account="ray-runner",
        pod_template=flyray.PodTemplate(
            pod_spec={"containers": [], "tolerations": [{"key": "ray", "operator": "Exists"}]}
        ),
    )
    cluster = ray_env.task(_job).custom_config()["rayClusterSpec"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        spec = group["template"]["spec"]
        assert spec["serviceAccountName"] == "ray-runner"
        assert spec["tolerations"] == [{"key": "ray", "operator": "Exists"}]
        assert spec["containers"][0]["name"] in ("ray-head", "ray-worker")


def _job() -> None:
    pass


def test_max_queued_time_is_the_rayjobs_pre_running_deadline():
    ray_env = flyray.TaskEnvironment(
        name="queued_env", plugin_config=RayJobConfig(worker_node_config=[])
    )
    task = ray_env.task(timeout=flyray.Timeout(max_runtime=600, max_queued_time=119.5))(_job)
    assert task.timeout == 600.0
    assert task.custom_config()["preRunningDeadlineSeconds"] == 120
    assert task.override(retries=1).custom_config()["preRunningDeadlineSeconds"] == 120


def test_cluster_mode_names_what_an_existing_cluster_does_not_take():
    from flyray.task.inert import settings_without_effect

    ray_env = flyray.TaskEnvironment(
        name="existing_env",
        plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig("w", replicas=2)]),
        secrets=[flyray.Secret(key="api-key", group="openai")],
    )
    found = dict(settings_without_effect(ray_env.task(_job), "cluster"))
    shape = "RayJobConfig's cluster (head, worker groups, autoscaling, shutdown and TTL)"
    assert "the cluster exists already" in found[shape]
    assert "must set OPENAI_API_KEY" in found["secrets"]
    assert dict(settings_without_effect(ray_env.task(_job), "kuberay")) == {}


@env.task(timeout=0.3)
async def hangs() -> str:
    await asyncio.sleep(60)
    return "never"


@env.task
async def carries_on() -> str:
    await asyncio.sleep(0.6)
    return "done"


@env.task(timeout=0.3)
def blocks() -> None:
    import time

    time.sleep(60)  # a blocking call, as ray.get is: the timeout must interrupt it


@env.task(retries=5, timeout=flyray.Timeout(max_runtime=10, deadline=1))
def keeps_failing() -> None:
    import time

    attempts.append("keeps_failing")
    time.sleep(0.4)
    raise ValueError("again")


def test_a_timed_out_call_does_not_stop_the_calls_gathered_with_it():
    async def main() -> list:
        return await asyncio.gather(carries_on(), hangs(), return_exceptions=True)

    done, timed_out = asyncio.run(main())
    assert done == "done"
    assert isinstance(timed_out, flyray.TaskTimeoutError) and "0.3 s" in str(timed_out)


def test_a_timeout_interrupts_blocking_code():
    with pytest.raises(flyray.TaskTimeoutError, match=r"timeout of 0\.3 s"):
        blocks()


def test_the_deadline_bounds_all_attempts_together():
    with pytest.raises(flyray.TaskTimeoutError, match="deadline of 1 s"):
        keeps_failing()
    assert 2 <= len(attempts) <= 3  # 0.4 s each: the third or fourth start passes 1 s


def test_override_with_a_plugin_config_makes_a_task_of_that_plugin():
    from flyray.plugins.ray import RayFunctionTask

    ray_plain = plain.override(plugin_config=RayJobConfig(worker_node_config=[]))
    assert isinstance(ray_plain, RayFunctionTask) and ray_plain.custom_config() is not None
    assert type(plain) is flyray.FunctionTask
    with pytest.raises(flyray.ConfigError, match=r"task\.cache"):
        plain.override(cache="sometimes")


def test_override_of_a_reused_environment_needs_reusable_off():
    ray_env = flyray.TaskEnvironment(
        name="reused",
        plugin_config=RayJobConfig(worker_node_config=[]),
        reusable=flyray.ReusePolicy(replicas=1, idle_ttl=600),
    )
    task = ray_env.task(_job)
    with pytest.raises(flyray.ConfigError, match="reusable='off'"):
        task.override(env_vars={"A": "1"})
    unshared = task.override(env_vars={"A": "1"}, reusable="off")
    assert unshared.env.env_vars == {"A": "1"} and not unshared.reuses_cluster


@env.task(timeout=0.2)
def swallows_errors() -> str:
    import time

    for _ in range(2):
        try:
            time.sleep(0.4)
        except Exception as exc:  # a broad except catches the timeout too
            print(f"ignored {exc}")
    return "went on"


def test_a_swallowed_timeout_still_fails_the_call():
    with pytest.raises(flyray.TaskTimeoutError, match=r"timeout of 0\.2 s"):
        swallows_errors()


def test_an_alarm_set_before_a_timed_call_is_kept():
    import signal

    def theirs(signum, frame):  # someone else's alarm, e.g. pytest-timeout's
        raise AssertionError("must not fire during this test")

    previous = signal.signal(signal.SIGALRM, theirs)
    signal.setitimer(signal.ITIMER_REAL, 60)
    try:
        assert plain(1) == 2 and env.task(timeout=5)(_job)() is None
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 50 < remaining <= 60 and signal.getsignal(signal.SIGALRM) is theirs
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Raised(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(f"bad {what}")  # its own __init__ calls super() with other args


def test_a_task_error_type_with_its_own_init_is_copied_faithfully():
    import pickle

    copy = errors.as_user_error(_Raised("input"))
    assert isinstance(copy, _Raised) and isinstance(copy, errors.RuntimeUserError)
    assert (str(copy), copy.args, copy.code) == ("bad input", ("bad input",), "_Raised")
    assert type(pickle.loads(pickle.dumps(ValueError("x")))) is ValueError
    assert type(pickle.loads(pickle.dumps(errors.as_user_error(ValueError("x"))))) is ValueError
