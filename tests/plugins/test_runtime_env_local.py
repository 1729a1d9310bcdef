"""local mode installs the runtime env's packages for real: pip and uv, from the package index.

The packages (pyjokes, humanize) are pure Python and not in the test virtualenv, so a worker
can import them only from the environment Ray built. A package that does not exist fails the
run in ``pre()`` with pip's own lines, and the Ray it started is stopped.
"""

from __future__ import annotations

import importlib.util
import time

import pytest

import flyray
from flyray.errors import RuntimeEnvSetupError
from flyray.plugins.ray import RayJobConfig

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow
MISSING = "flyray-no-such-package-4d1f"


def _env(name: str, runtime_env: dict) -> flyray.TaskEnvironment:
    return flyray.TaskEnvironment(name=name, plugin_config=RayJobConfig(runtime_env=runtime_env))


pip_env = _env("pip_env", {"pip": ["pyjokes==0.8.3"]})
uv_env = _env("uv_env", {"uv": ["humanize==4.12.3"]})
missing_env = _env("missing_env", {"pip": [MISSING]})


@pip_env.task
def joke_version() -> str:
    @ray.remote
    def on_worker() -> str:
        from importlib.metadata import version

        import pyjokes

        assert pyjokes.get_joke()
        return version("pyjokes")

    return ray.get(on_worker.remote())


@uv_env.task
def natural_size() -> str:
    @ray.remote
    def on_worker() -> str:
        import humanize

        return humanize.naturalsize(3_000_000)

    return ray.get(on_worker.remote())


@missing_env.task
def never_runs() -> str:
    return "ran"


@pytest.fixture(autouse=True)
def _not_here():
    for name in ("pyjokes", "humanize"):
        assert importlib.util.find_spec(name) is None, f"{name} is installed in the test venv"


def test_pip_packages_reach_the_workers(ray_tmpdir):
    assert flyray.run(joke_version).result() == "0.8.3"
    assert not ray.is_initialized()


def test_uv_packages_reach_the_workers(ray_tmpdir):
    assert flyray.run(natural_size).result() == "3.0 MB"


def test_a_package_that_does_not_exist_fails_in_pre_with_pips_words(ray_tmpdir):
    started = time.monotonic()
    with pytest.raises(RuntimeEnvSetupError) as info:
        flyray.run(never_runs).result()
    message = str(info.value)
    assert MISSING in message and "pip install failed" in message
    assert "No matching distribution found" in message
    assert not ray.is_initialized()
    print(f"pip failure reported after {time.monotonic() - started:.0f} s")
