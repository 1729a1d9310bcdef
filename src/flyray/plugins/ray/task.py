"""``RayFunctionTask``: connects to Ray in ``pre``, describes its cluster in ``custom_config``."""

from __future__ import annotations

import contextvars
import json
import os
import threading
import time
import warnings
from typing import Any, ClassVar

from flyray.config.policies import ReusePolicy
from flyray.errors import BadConfigurationError, RuntimeEnvSetupError, SubmissionError
from flyray.manifest.kuberay import kuberay_config
from flyray.plugins.ray.config import (
    AutoscalerOptions,
    AutoscalerOptionsConfig,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)
from flyray.plugins.ray.envsetup import ENV_SETUP_TRIES, building, setup_failure
from flyray.plugins.ray.errors import first_paragraph, ray_client_sends_token, ray_error
from flyray.plugins.ray.request import ray_request
from flyray.plugins.ray.resources import local_ray_resources
from flyray.plugins.ray.runtime_env import resolve_runtime_env
from flyray.task.base import FunctionTask
from flyray.task.context import in_cluster
from flyray.task.envvars import RUN_ENV_VARS, set_env_vars
from flyray.warn import FlyrayWarning

# The spec imports the config classes from this module too.
__all__ = [
    "WORKING_DIR_EXCLUDES",
    "AutoscalerOptions",
    "AutoscalerOptionsConfig",
    "HeadNodeConfig",
    "RayFunctionTask",
    "RayJobConfig",
    "WorkerNodeConfig",
]

JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for the driver

# Left out of the working directory a job driver ships to its workers: the spec's names,
# flyray's own bundle archives, version control, virtualenvs and caches.
WORKING_DIR_EXCLUDES = [
    "script_mode.tar.gz",
    "fast*.tar.gz",
    ".python_history",
    "flyray-bundle-*.zip",
    ".flyray/",
    ".git/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",
    ".ruff_cache/",
]


class RayFunctionTask(FunctionTask):
    """A task whose environment declares a Ray cluster with a ``RayJobConfig``."""

    plugin_config: RayJobConfig
    supports_reuse_policy: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _check_reuse_policy(self.env.reusable, self.plugin_config)

    @property
    def reuses_cluster(self) -> bool:
        """Runs share one kept RayCluster: ``reusable=ReusePolicy(...)`` or ``reuse_cluster``."""
        return self.env.reusable is not None or self.plugin_config.reuse_cluster

    async def pre(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call ``ray.init()`` unless Ray is already initialised (then leave it as it is).

        Concurrent calls in one process share the Ray that the first one started: each call
        holds it until its ``post()``, and the last one to finish shuts it down. A call that
        would have started Ray differently (another runtime env or address) is warned.
        """
        import ray

        params = self._init_params()
        with _RAY_LOCK:
            if ray.is_initialized():
                _RAY.join(self.name, params)
                return {}
            self._init_ray(ray, params)
            _build_runtime_env(ray, params.get("runtime_env"))
            _RAY.started(params)
        return {}

    def _init_params(self) -> dict[str, Any]:
        """The arguments of ``ray.init`` for this call."""
        init_params: dict[str, Any] = {}
        if self.plugin_config.address is not None:
            init_params["address"] = self.plugin_config.address
        runtime_env = self.runtime_env()
        if runtime_env:
            init_params["runtime_env"] = runtime_env
        address = self.plugin_config.address or os.environ.get("RAY_ADDRESS")
        accelerators = local_ray_resources(self.plugin_config, self.env.resources)
        if address is None and accelerators:  # a new local Ray stands in for every node
            init_params["resources"] = accelerators
        return init_params

    def _init_ray(self, ray: Any, init_params: dict[str, Any]) -> None:
        """``ray.init``; a cluster that cannot be joined is a flyray error, not the task's."""
        address = self.plugin_config.address or os.environ.get("RAY_ADDRESS")
        started = time.monotonic()
        name, value = ENV_SETUP_TRIES
        tries = {name: value} if address is None and name not in os.environ else {}
        try:
            with set_env_vars(tries):  # inherited by the processes of a new local Ray
                ray.init(**init_params)
        except Exception as exc:
            action = f"connect (waited {time.monotonic() - started:.0f} s)"
            if address is None:  # a new local Ray: nothing to join
                if not isinstance(exc, (ConnectionError, TimeoutError)):
                    raise
                raise SubmissionError(
                    f"could not start a local Ray: {first_paragraph(exc)}"
                ) from exc
            error = ray_error(
                exc, address=address, action=action, token_sent=ray_client_sends_token()
            )
            if error is None:
                raise
            raise error from exc

    async def post(self, return_vals: Any) -> Any:
        """Let go of the Ray that ``pre`` started; the last call to let go shuts it down.

        A Ray that was running before (the user's, or a job's) is left alone.
        """
        with _RAY_LOCK:
            if _RAY.leave():
                import ray

                ray.shutdown()
        return return_vals

    def describe_pre(self) -> str:
        """What ``pre`` is doing, for progress displays."""
        address = self.plugin_config.address or os.environ.get("RAY_ADDRESS")
        doing = f"Connecting to Ray at {address}" if address else "Starting Ray"
        installs = building(self.plugin_config.runtime_env)
        return f"{doing} and building its runtime env ({installs})" if installs else doing

    def runtime_env(self) -> dict[str, Any]:
        """The runtime_env ``pre`` passes to ``ray.init``: the config's, plus the environment's
        and the run's (``with_runcontext(env_vars=...)``) env vars.

        In a cluster (inside flyray's job entrypoint) the current directory also becomes the
        ``working_dir``, without temporary files, so every worker sees the task's code. Fields
        the Ray job already carries are left out: they apply to this driver and its workers
        already, and Ray refuses a driver runtime_env that repeats them.
        """
        config_env = self.plugin_config.runtime_env
        env = dict(config_env or {}) if in_cluster() else resolve_runtime_env(config_env)
        env_vars = {**(self.env.env_vars or {}), **RUN_ENV_VARS.get()}  # the run's win
        if env_vars:
            env["env_vars"] = {**env.get("env_vars", {}), **env_vars}
        if in_cluster():
            env["working_dir"] = os.getcwd()
            env["excludes"] = [*env.get("excludes", []), *WORKING_DIR_EXCLUDES]
            job_env = _job_runtime_env()
            if "working_dir" in job_env:
                job_env = {**job_env, "excludes": None}
            env = {key: value for key, value in env.items() if key not in job_env}
        return env

    def custom_config(self, sctx: Any = None) -> dict[str, Any]:
        """The cluster in KubeRay's terms (``kuberay_config``), read from ``ray_request``.

        Deterministic and JSON-serialisable: the same request the RayJob is rendered from.
        """
        return kuberay_config(ray_request(self))


class _SharedRay:
    """The Ray that flyray's ``pre`` started in this process and the calls that hold it.

    Each start is a new session; a call holds the session it joined (a context variable, so
    nested and gathered calls each count), and letting go of an ended session (Ray was shut
    down under its holders and started again) leaves the current one alone.
    """

    def __init__(self) -> None:
        self.active = False  # a Ray that flyray's pre() started is running
        self.session = 0
        self.holders = 0
        self.params: dict[str, Any] = {}
        self.held: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar(
            "held_ray_sessions", default=()
        )

    def started(self, params: dict[str, Any]) -> None:
        """This call started Ray: a new session, held once (lock held)."""
        self.end()  # whatever session was running, Ray is new now
        self.active, self.params = True, params
        self._hold()

    def join(self, task_name: str, params: dict[str, Any]) -> None:
        """This call runs on a Ray that is up already; held if it is flyray's (lock held)."""
        if not self.active:
            return
        if params != self.params:
            warnings.warn(
                f"task {task_name!r} runs on the Ray that an earlier call in this process "
                "started, whose ray.init() arguments (runtime_env, address, resources) differ "
                "from this task's: run such tasks one after the other, or in local-cluster mode",
                FlyrayWarning,
                stacklevel=5,
            )
        self._hold()

    def leave(self) -> bool:
        """This call lets go; True when it was the last holder of the running session."""
        held = self.held.get()
        if not held:
            return False
        self.held.set(held[:-1])
        if not self.active or held[-1] != self.session:
            return False
        self.holders -= 1
        if self.holders > 0:
            return False
        self.end()
        return True

    def end(self) -> None:
        """No Ray of flyray's runs any more; holders of the ended session no longer count."""
        self.active, self.holders, self.params = False, 0, {}
        self.session += 1

    def _hold(self) -> None:
        self.holders += 1
        self.held.set((*self.held.get(), self.session))


# Ray is one per process: the calls of every Ray task share it (see ``pre``/``post``).
_RAY_LOCK = threading.Lock()
_RAY = _SharedRay()


def _check_reuse_policy(policy: ReusePolicy | None, config: RayJobConfig) -> None:
    """Flyte's rules for a reused Ray cluster: one shared cluster that outlives every job."""
    if policy is None:
        return
    if policy.max_replicas != 1:
        raise BadConfigurationError(
            "TaskEnvironment.reusable.replicas",
            policy.replicas,
            "must be 1: reusable Ray tasks currently support exactly 1 replica (one shared "
            "RayCluster); use ReusePolicy(replicas=1)",
        )
    if policy.concurrency != 1:
        raise BadConfigurationError(
            "TaskEnvironment.reusable.concurrency",
            policy.concurrency,
            "must be 1: reusable Ray tasks currently don't support setting concurrency",
        )
    if config.shutdown_after_job_finishes:
        raise BadConfigurationError(
            "RayJobConfig.shutdown_after_job_finishes",
            True,
            "cannot be used with a reuse policy: the shared RayCluster must outlive individual "
            "jobs; it is shut down after ReusePolicy(idle_ttl=...) of inactivity",
        )
    if config.ttl_seconds_after_finished is not None:
        raise BadConfigurationError(
            "RayJobConfig.ttl_seconds_after_finished",
            config.ttl_seconds_after_finished,
            "is ignored when a reuse policy is set; use ReusePolicy(idle_ttl=...) to control "
            "when the shared RayCluster is shut down",
        )


def _build_runtime_env(ray: Any, runtime_env: dict[str, Any] | None) -> None:
    """Have Ray build the env's pip/uv/conda part now, with a tiny task: else the first task
    of the user's code would wait for it, and fail only there. A failure stops the Ray that
    ``pre`` just started and says what the installer said."""
    if building(runtime_env) is None:
        return

    @ray.remote(num_cpus=0)
    def runtime_env_probe() -> None:
        return None

    try:
        ray.get(runtime_env_probe.remote())
    except ray.exceptions.RuntimeEnvSetupError as exc:
        ray.shutdown()
        raise RuntimeEnvSetupError(setup_failure(str(exc)) or str(exc)) from None


def _job_runtime_env() -> dict[str, Any]:
    """The runtime env of the Ray job this driver runs in (Ray passes it in the environment)."""
    job_config = json.loads(os.environ.get(JOB_CONFIG_ENV, "{}") or "{}")
    return job_config.get("runtime_env") or {}
