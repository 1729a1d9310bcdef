"""Tasks whose runtime env installs packages from the package index (the rtenv tests).

pyjokes and humanize are small pure-Python packages that the test virtualenv lacks: a worker
imports them only from the environment Ray built for the job.
"""

import ray

import flyray
from flyray import Resources
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig

MISSING = "flyray-no-such-package-4d1f"


def _env(name: str, runtime_env: dict) -> flyray.TaskEnvironment:
    head = HeadNodeConfig(requests=Resources(cpu="1", memory="1Gi"))
    config = RayJobConfig(head_node_config=head, runtime_env=runtime_env)
    return flyray.TaskEnvironment(name=name, plugin_config=config)


pip_env = _env("rtenv_pip", {"pip": ["pyjokes==0.8.3"], "env_vars": {"RTENV": "pip"}})
uv_env = _env("rtenv_uv", {"uv": ["humanize==4.12.3"]})
missing_env = _env("rtenv_missing", {"pip": [MISSING]})


@ray.remote
def joke_on_worker() -> dict:
    import os
    from importlib.metadata import version

    import pyjokes

    return {
        "pyjokes": version("pyjokes"),
        "joke": bool(pyjokes.get_joke()),
        "env": os.environ.get("RTENV"),
    }


@ray.remote
def size_on_worker() -> str:
    import humanize

    return humanize.naturalsize(3_000_000)


@pip_env.task
def joke() -> dict:
    return ray.get(joke_on_worker.remote())


@uv_env.task
def natural_size() -> str:
    return ray.get(size_on_worker.remote())


@missing_env.task
def never_runs() -> str:
    return "ran"
