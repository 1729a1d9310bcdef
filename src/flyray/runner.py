"""``flyray.run`` and ``flyray.with_runcontext``: pick an executor by mode and run a task.

They take Flyte's keywords too (``flyray.flyte_args`` says what each does); Flyte's
``mode="remote"`` runs in the ``remote_mode`` setting's mode, ``"hybrid"`` is refused.
"""

from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flyray._syncify import Syncified
from flyray.config.settings import Settings
from flyray.errors import ConfigError, FlyrayError
from flyray.executors.base import Executor, LogCallback, ProgressCallback, RunOptions, new_run_id
from flyray.executors.registry import MODES, REMOTE_MODES, executor_type
from flyray.flyte_args import FLYTE_DEFAULTS, run_options, run_store_of
from flyray.outputs import ActionOutputs
from flyray.store.record import RunStatus
from flyray.task.base import FunctionTask
from flyray.task.inert import warn_without_effect

__all__ = ["Run", "RunContext", "run", "with_runcontext"]

POLL_SECONDS = 1.0  # how often ``Run.wait`` asks about a detached run


@dataclass
class Run:
    """A finished or running task run: its name (run id), mode, status and outputs."""

    run_id: str
    task_name: str
    mode: str
    status: RunStatus
    _executor: Executor = field(repr=False)

    @property
    def name(self) -> str:
        """The run's name: its run id (``flyray runs show NAME``)."""
        return self.run_id

    @property
    def url(self) -> str:
        """The run's folder in the run store; "" in local mode, which keeps nothing."""
        return self._executor.location(self.run_id)

    @property
    def phase(self) -> RunStatus:
        """The run's status now (a detached run's is asked from its cluster)."""
        if not self.status.is_terminal():
            self.status = self._executor.status(self.run_id)
        return self.status

    def done(self) -> bool:
        """Whether the run has ended (succeeded, failed or stopped)."""
        return self.phase.is_terminal()

    @Syncified
    def wait(self, quiet: bool = False, wait_for: str = "terminal") -> None:
        """Block until the run has ended (``wait_for="running"``: until it runs); None.

        Only a detached run is still going; ``quiet`` is accepted as Flyte's (flyray's wait
        prints nothing). The run's error is raised by ``outputs()``, not here.
        """
        import time

        if wait_for not in ("terminal", "running"):
            raise ConfigError("wait_for", wait_for, "must be 'terminal' or 'running'")
        while not (self.done() or (wait_for == "running" and self.status is RunStatus.RUNNING)):
            time.sleep(POLL_SECONDS)

    @Syncified
    def outputs(self) -> ActionOutputs:
        """The outputs as Flyte gives them: ``ActionOutputs(o0=...)``; raises the run's error."""
        if not self.done():
            raise FlyrayError(
                f"run {self.run_id} is {self.status}, so it has no outputs yet: call wait() first"
            )
        return ActionOutputs.of(self.result())

    def result(self) -> Any:
        """The task's return value as it is (None while a detached run goes on)."""
        return self._executor.result(self.run_id)


@dataclass(frozen=True)
class RunContext:
    """How to run: the mode, the settings, the run's name and options, where output goes."""

    mode: str
    settings: Settings
    on_progress: ProgressCallback | None = None
    on_log: LogCallback | None = None
    detach: bool = False
    skip_version_check: bool = False
    fresh: bool = False
    name: str | None = None
    options: RunOptions = field(default_factory=RunOptions)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError("mode", self.mode, f"must be one of: {', '.join(MODES)}")

    def executor(self) -> Executor:
        """A new executor for this context's mode."""
        executor_class = executor_type(self.mode)
        options = {
            "detach": self.detach,
            "skip_version_check": self.skip_version_check,
            "fresh": self.fresh,
        }
        chosen = {key: value for key, value in options.items() if value}
        for key in chosen:
            if key not in executor_class.options:
                raise ConfigError(key, True, f"is not available in {self.mode} mode")
        return executor_class(self.settings, on_log=self.on_log, **chosen)

    @Syncified
    def run(self, task: FunctionTask, *args: Any, **kwargs: Any) -> Run:
        """Run ``task(*args, **kwargs)`` to completion; the task's own error is raised."""
        if not isinstance(task, FunctionTask):
            raise ConfigError("task", task, "must be a task made with @TaskEnvironment.task")
        warn_without_effect(task, self.mode)
        executor = self.executor()
        run_id = self.name or new_run_id()
        try:
            executor.submit(task, args, kwargs, run_id=run_id, options=self.options)
            status = executor.wait(run_id, on_progress=self.on_progress)
        finally:
            executor.cleanup()
        handle = Run(run_id, task.name, self.mode, status, executor)
        if status in (RunStatus.FAILED, RunStatus.STOPPED):
            handle.result()  # raises the task's error
        return handle


def with_runcontext(
    mode: str | None = None,
    *,
    name: str | None = None,
    service_account: str | None = None,
    version: str | None = None,
    copy_style: str = "loaded_modules",
    dry_run: bool = False,
    copy_bundle_to: pathlib.Path | None = None,
    interactive_mode: bool | None = None,
    raw_data_path: str | None = None,
    run_base_dir: str | None = None,
    run_start_time: datetime | None = None,
    overwrite_cache: bool = False,
    project: str | None = None,
    domain: str | None = None,
    env_vars: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    interruptible: bool | None = None,
    log_level: int | None = None,
    log_format: str = "console",
    user_log_level: int | None = None,
    reset_root_logger: bool = False,
    disable_run_cache: bool = False,
    queue: str | None = None,
    max_action_concurrency: int | None = None,
    notifications: Any = None,
    custom_context: dict[str, str] | None = None,
    cache_lookup_scope: str = "global",
    preserve_original_types: bool = False,
    debug: bool = False,
    tracked: bool = False,
    tracked_strict: bool = False,
    _tracker: Any = None,
    on_progress: ProgressCallback | None = None,
    on_log: LogCallback | None = None,
    detach: bool = False,
    skip_version_check: bool = False,
    fresh: bool = False,
    **settings: Any,
) -> RunContext:
    """A context to run tasks in, e.g. ``flyray.with_runcontext(mode="local-cluster")``.

    ``mode`` is one of flyray's modes, or Flyte's ``"local"`` or ``"remote"`` (the
    ``remote_mode`` setting, kuberay by default). Flyte's keywords are accepted: ``name``
    (the run id), ``env_vars`` (set for the task in every mode), ``labels``, ``annotations``
    and ``service_account`` (kuberay), ``run_base_dir`` (the run store) are honoured; any
    other one set away from Flyte's default has no effect and says so with a FlyrayWarning.
    ``settings`` (``run_store``, ``image``, ``namespace``, ``context``, ``shared_run_store``,
    ``address``, ``clusters_dir``, ...) override the project's settings (pyproject
    ``[tool.flyray]``, ``FLYRAY_*``); job logs go to ``on_log`` (stderr). ``detach`` (cluster
    and kuberay modes) returns once the job is submitted; ``skip_version_check`` runs even when
    the cluster's versions differ from the caller's; ``fresh`` (local-cluster mode) starts a new
    cluster even when a warm one matches.
    """
    given = locals()
    flyte = {key: given[key] for key in FLYTE_DEFAULTS}
    unknown = sorted(set(settings) - set(Settings.names()))
    if unknown:
        raise ConfigError("with_runcontext", unknown, f"takes settings {Settings.names()}")
    overrides = run_store_of(run_base_dir, settings)
    resolved = _flyray_mode(Settings.load(overrides={"mode": mode, **overrides}))
    run_name, options = run_options(resolved.mode, flyte)
    return RunContext(
        resolved.mode,
        resolved,
        on_progress=on_progress,
        on_log=on_log,
        detach=detach,
        skip_version_check=skip_version_check,
        fresh=fresh,
        name=run_name,
        options=options,
    )


def _flyray_mode(settings: Settings) -> Settings:
    """The settings with Flyte's ``"remote"`` made the ``remote_mode``; ``"hybrid"`` refused."""
    if settings.mode == "hybrid":
        raise ConfigError(
            "mode",
            "hybrid",
            "is Flyte's hybrid mode (a driver here, its tasks on the cluster), which flyray "
            "has not: use mode='local-cluster' to rehearse the cluster run on this machine, or "
            "mode='kuberay' (or 'remote') to run it on the cluster",
        )
    if settings.mode != "remote":
        return settings
    if settings.remote_mode not in REMOTE_MODES:
        where = settings.sources.get("remote_mode", "default")
        raise ConfigError(
            f"remote_mode (from {where})",
            settings.remote_mode,
            f"must be one of: {', '.join(REMOTE_MODES)}",
        )
    sources = {**settings.sources, "mode": f"remote_mode ({settings.sources['mode']})"}
    return dataclasses.replace(settings, mode=settings.remote_mode, sources=sources)


@Syncified
def run(task: FunctionTask, *args: Any, **kwargs: Any) -> Run:
    """Run a task in the default mode (settings, else ``local``) and return its run handle."""
    return with_runcontext().run(task, *args, **kwargs)
