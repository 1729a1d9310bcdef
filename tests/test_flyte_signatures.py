"""The run side's signatures against the real flyte's: the same names, order and defaults."""

import inspect

import pytest

import flyray

flyte = pytest.importorskip("flyte")

OWN = {"on_progress", "on_log", "detach", "skip_version_check", "fresh", "settings"}


def parameters(func):
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


@pytest.mark.parametrize(
    "name", ["init", "init_from_config", "init_from_api_key", "init_in_cluster", "init_passthrough"]
)
def test_init_functions_take_flytes_parameters(name):
    assert parameters(getattr(flyray, name)) == parameters(getattr(flyte, name))
    assert hasattr(getattr(flyray, name), "aio")


def test_with_runcontext_takes_flytes_keywords_then_flyrays_own():
    ours = [p for p in parameters(flyray.with_runcontext) if p[0] not in OWN]
    assert ours == parameters(flyte.with_runcontext)


def test_run_and_wait_take_what_flytes_take():
    assert parameters(flyray.run) == parameters(flyte.run)
    from flyte.remote import Run as FlyteRun

    ours = parameters(flyray.Run.wait)
    assert ours == parameters(FlyteRun.wait)
