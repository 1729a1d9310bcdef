"""Environment variables of local runs: set for a call, restored after, warned when they clash."""

from __future__ import annotations

import asyncio
import warnings

import pytest

import flyray
from flyray import TaskEnvironment

env = flyray.TaskEnvironment(name="envvars_env")


def test_env_vars_are_set_during_a_local_run_only(monkeypatch):
    monkeypatch.delenv("FLYRAY_TEST_VAR", raising=False)
    env = TaskEnvironment("plain", env_vars={"FLYRAY_TEST_VAR": "yes"})

    @env.task
    def read() -> str | None:
        import os

        return os.environ.get("FLYRAY_TEST_VAR")

    assert read() == "yes"
    import os

    assert "FLYRAY_TEST_VAR" not in os.environ


@env.task
async def reads_x() -> str | None:
    await asyncio.sleep(0.1)  # both calls are inside their environments now
    import os

    return os.environ.get("FLYRAY_TEST_X")


def test_concurrent_calls_with_clashing_env_vars_are_warned():
    async def main() -> list:
        return await asyncio.gather(
            reads_x.override(env_vars={"FLYRAY_TEST_X": "a"}).aio(),
            reads_x.override(env_vars={"FLYRAY_TEST_X": "b"}).aio(),
        )

    with pytest.warns(flyray.FlyrayWarning, match="FLYRAY_TEST_X to different values"):
        asyncio.run(main())
    import os

    assert "FLYRAY_TEST_X" not in os.environ


@env.task
async def nests_x() -> str | None:
    return await reads_x.override(env_vars={"FLYRAY_TEST_X": "inner"}).aio()


def test_a_nested_call_may_set_its_own_value_without_a_warning():
    import os

    outer = nests_x.override(env_vars={"FLYRAY_TEST_X": "outer"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", flyray.FlyrayWarning)
        assert asyncio.run(outer.aio()) == "inner"
    assert "FLYRAY_TEST_X" not in os.environ
