"""flyray.run / with_runcontext / Run in local mode: Flyte's keywords, modes and run handle."""

import asyncio
import os
import warnings

import pytest

import flyray
from flyray import ActionOutputs, ConfigError, FlyrayWarning, RunStatus
from flyray.flyte_args import FLYTE_DEFAULTS

env = flyray.TaskEnvironment("handle_env", env_vars={"FROM_ENV": "env", "BOTH": "env"})


@env.task
def pair() -> tuple[int, int]:
    return 1, 2


@env.task
def double(x: int) -> int:
    return 2 * x


@env.task
def nothing() -> None:
    return None


@env.task
def listed() -> list[int]:
    return [1, 2]


@env.task
def read_env() -> dict:
    return {key: os.environ.get(key) for key in ("FROM_ENV", "FROM_RUN", "BOTH")}


@env.task
def boom() -> int:
    raise KeyError("boom")


def local(**options):
    return flyray.with_runcontext(mode="local", **options)


@pytest.mark.parametrize(
    ("task", "args", "outputs", "result"),
    [
        (pair, (), (1, 2), (1, 2)),
        (double, (3,), (6,), 6),
        (nothing, (), (None,), None),
        (listed, (), ([1, 2],), [1, 2]),
    ],
)
def test_outputs_are_flyte_action_outputs_and_result_the_bare_value(task, args, outputs, result):
    run = local().run(task, *args)
    assert isinstance(run.outputs(), ActionOutputs) and run.outputs() == outputs
    assert run.outputs().o0 == outputs[0]
    assert run.result() == result


def test_the_handle_in_local_mode():
    run = flyray.run(double, 5)
    assert run.name == run.run_id and run.name.startswith("r")
    assert run.url == ""  # local mode keeps nothing
    assert run.wait() is None
    assert run.phase is RunStatus.SUCCEEDED and run.done()
    assert repr(run.outputs()) == "ActionOutputs(o0=10)"


def test_a_failing_task_raises_its_own_error():
    with pytest.raises(KeyError, match="boom"):
        flyray.run(boom)


def test_name_is_the_run_id():
    assert local(name="my-run-1").run(double, 1).name == "my-run-1"


@pytest.mark.parametrize(
    ("name", "run_id"),
    [("example_run_id", "example-run-id"), ("My Run", "my-run")],
)
def test_a_name_that_is_no_run_id_is_made_into_one_with_a_warning(name, run_id):
    with pytest.warns(FlyrayWarning, match=rf"name='{name}' is not a flyray run id.*'{run_id}'"):
        context = local(name=name)
    assert context.run(double, 1).name == run_id


def test_a_long_name_keeps_a_hash_so_long_names_stay_distinct():
    with pytest.warns(FlyrayWarning):
        first = local(name="a" * 40 + "1").name
        second = local(name="a" * 40 + "2").name
    assert first != second and len(first) <= 32 and len(second) <= 32


@pytest.mark.parametrize("name", ["", "  ", 7])
def test_an_empty_name_is_refused(name):
    with pytest.raises(ConfigError, match="name must be a non-empty string"):
        local(name=name)


def test_env_vars_reach_the_task_and_win_over_the_environments():
    run = local(env_vars={"FROM_RUN": "run", "BOTH": "run"}).run(read_env)
    assert run.result() == {"FROM_ENV": "env", "FROM_RUN": "run", "BOTH": "run"}
    assert "FROM_RUN" not in os.environ and "BOTH" not in os.environ  # restored after the run
    assert env.env_vars == {"FROM_ENV": "env", "BOTH": "env"}  # the task is not changed


@pytest.mark.parametrize(
    ("env_vars", "match"),
    [
        ({"1BAD": "x"}, r"env_vars\['1BAD'\] must be a valid variable name"),
        ({"OK": 1}, r"env_vars\['OK'\] must be a string"),
        (["A=1"], "env_vars must be a dict of str to str"),
    ],
)
def test_bad_env_vars_are_refused(env_vars, match):
    with pytest.raises(ConfigError, match=match):
        local(env_vars=env_vars)


@pytest.mark.parametrize(
    ("keyword", "value", "says"),
    [
        ("version", "v1", "no task versions"),
        ("copy_style", "all", "bundles the folder of the task's file"),
        ("project", "p", "no Flyte control plane"),
        ("domain", "development", "no Flyte control plane"),
        ("overwrite_cache", True, "caches no task outputs"),
        ("interruptible", True, "interruptibility"),
        ("log_level", 10, "logs through"),
        ("queue", "gpu", "where a flyray run goes"),
        ("custom_context", {"a": "b"}, "get_custom_context"),
        ("raw_data_path", "/tmp/raw", "keeps no raw data"),
        ("run_base_dir", "/tmp/base", "local mode stores nothing"),
        ("labels", {"team": "ml"}, "only kuberay mode creates Kubernetes objects"),
        ("annotations", {"a": "b"}, "only kuberay mode creates Kubernetes objects"),
        ("service_account", "runner", "only kuberay mode creates Kubernetes objects"),
        ("dry_run", True, "the task runs, as in Flyte's local mode"),
        ("tracked", True, "no Flyte control plane"),
    ],
)
def test_each_keyword_without_effect_warns_once_naming_itself_and_the_mode(keyword, value, says):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run = local(**{keyword: value}).run(double, 2)
    (warning,) = [w for w in seen if w.category is FlyrayWarning]
    assert str(warning.message).startswith(f"{keyword}={value!r} has no effect in local mode: ")
    assert says in str(warning.message) and warning.filename == __file__
    assert run.result() == 4


def test_flytes_defaults_warn_about_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert local(**FLYTE_DEFAULTS).run(double, 1).result() == 2


def test_remote_runs_in_the_remote_mode_setting(monkeypatch):
    assert flyray.with_runcontext(mode="remote").mode == "kuberay"
    assert flyray.with_runcontext(mode="remote", remote_mode="cluster").mode == "cluster"
    monkeypatch.setenv("FLYRAY_REMOTE_MODE", "local-cluster")
    context = flyray.with_runcontext(mode="remote")
    assert context.mode == context.settings.mode == "local-cluster"
    monkeypatch.setenv("FLYRAY_MODE", "remote")
    assert flyray.with_runcontext().mode == "local-cluster"


def test_remote_mode_must_be_a_mode_off_this_process(monkeypatch):
    monkeypatch.setenv("FLYRAY_REMOTE_MODE", "local")
    with pytest.raises(ConfigError, match=r"remote_mode \(from env FLYRAY_REMOTE_MODE\) must be"):
        flyray.with_runcontext(mode="remote")


def test_hybrid_is_refused_with_what_to_use_instead():
    with pytest.raises(ConfigError) as caught:
        flyray.with_runcontext(mode="hybrid")
    assert caught.value.field == "mode" and caught.value.value == "hybrid"
    assert "mode='local-cluster'" in caught.value.rule and "mode='kuberay'" in caught.value.rule


def test_run_base_dir_is_the_run_store_and_must_agree_with_it(tmp_path):
    context = flyray.with_runcontext(mode="cluster", run_base_dir=str(tmp_path))
    assert context.settings.run_store == str(tmp_path)
    with pytest.raises(ConfigError, match="run_base_dir names the run store"):
        flyray.with_runcontext(mode="cluster", run_base_dir="/a", run_store="/b")


def test_dry_run_is_refused_where_it_would_not_run_the_task():
    with pytest.raises(ConfigError, match=r"dry_run is not available in kuberay mode.*render"):
        flyray.with_runcontext(mode="kuberay", dry_run=True)


def test_kubernetes_options_are_kept_for_kuberay_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        context = flyray.with_runcontext(
            mode="kuberay",
            labels={"team": "ml"},
            annotations={"note": "any text"},
            service_account="ray-runner",
            env_vars={"A": "1"},
        )
    assert dict(context.options.labels) == {"team": "ml"}
    assert dict(context.options.annotations) == {"note": "any text"}
    assert context.options.service_account == "ray-runner"
    assert dict(context.options.env_vars) == {"A": "1"}


def test_a_bad_service_account_is_refused():
    with pytest.raises(ConfigError, match="service_account must be a Kubernetes ServiceAccount"):
        flyray.with_runcontext(mode="kuberay", service_account="Not_A_Name")


def test_aio_variants_run_in_an_event_loop():
    async def main():
        first = await flyray.run.aio(double, 4)
        second = await local().run.aio(double, 5)
        await second.wait.aio()
        return await first.outputs.aio(), second.result()

    assert asyncio.run(main()) == ((8,), 10)
