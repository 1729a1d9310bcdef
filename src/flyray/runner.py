"""``flyray.run`` and ``flyray.with_runcontext``: pick an executor by mode and run a task."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from flyray.config.settings import Settings
from flyray.errors import ConfigError
from flyray.executors.base import Executor, LogCallback, ProgressCallback, RunStatus, new_run_id
from flyray.task.base import FunctionTask
from flyray.task.inert import warn_without_effect

__all__ = ["MODES", "Run", "RunContext", "run", "with_runcontext"]

# mode -> "module:ExecutorClass", imported only when the mode is used.
MODES: dict[str, str] = {
    "local": "flyray.executors.local:LocalExecutor",
    "local-cluster": "flyray.executors.local_cluster:LocalClusterExecutor",
    "cluster": "flyray.executors.cluster:ClusterExecutor",
    "kuberay": "flyray.executors.kuberay:KubeRayExecutor",
}


@dataclass
class Run:
    """A finished or running task run: its id, mode, status and result."""

    run_id: str
    task_name: str
    mode: str
    status: RunStatus
    _executor: Executor = field(repr=False)

    def outputs(self) -> Any:
        """The task's return value (raises the task's error if it failed)."""
        return self._executor.result(self.run_id)

    result = outputs


@dataclass(frozen=True)
class RunContext:
    """How to run: the mode, the settings, and where progress and job logs go."""

    mode: str
    settings: Settings
    on_progress: ProgressCallback | None = None
    on_log: LogCallback | None = None
    detach: bool = False
    skip_version_check: bool = False
    fresh: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError("mode", self.mode, f"must be one of: {', '.join(MODES)}")

    def executor(self) -> Executor:
        """A new executor for this context's mode."""
        module, _, name = MODES[self.mode].partition(":")
        executor_type = getattr(importlib.import_module(module), name)
        options = {
            "detach": self.detach,
            "skip_version_check": self.skip_version_check,
            "fresh": self.fresh,
        }
        chosen = {key: value for key, value in options.items() if value}
        for key in chosen:
            if key not in executor_type.options:
                raise ConfigError(key, True, f"is not available in {self.mode} mode")
        return executor_type(self.settings, on_log=self.on_log, **chosen)

    def run(self, task: FunctionTask, *args: Any, **kwargs: Any) -> Run:
        """Run ``task(*args, **kwargs)`` to completion; the task's own error is raised."""
        if not isinstance(task, FunctionTask):
            raise ConfigError("task", task, "must be a task made with @TaskEnvironment.task")
        warn_without_effect(task, self.mode)
        executor = self.executor()
        run_id = new_run_id()
        executor.submit(task, args, kwargs, run_id=run_id)
        status = executor.wait(run_id, on_progress=self.on_progress)
        handle = Run(run_id, task.name, self.mode, status, executor)
        if status in (RunStatus.FAILED, RunStatus.STOPPED):
            handle.outputs()  # raises the task's error
        return handle


def with_runcontext(
    mode: str | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    on_log: LogCallback | None = None,
    detach: bool = False,
    skip_version_check: bool = False,
    fresh: bool = False,
    **settings: Any,
) -> RunContext:
    """A context to run tasks in, e.g. ``flyray.with_runcontext(mode="local-cluster")``.

    ``mode`` and ``settings`` (``run_store``, ``image``, ``namespace``, ``context``,
    ``shared_run_store``, ``address``, ``clusters_dir``) override the project's settings (pyproject
    ``[tool.flyray]``, ``FLYRAY_*``); job logs go to ``on_log`` (stderr). ``detach`` (cluster
    and kuberay modes) returns once the job is submitted; ``skip_version_check`` runs even when
    the cluster's versions differ from the caller's; ``fresh`` (local-cluster mode) starts a new
    cluster even when a warm one matches.
    """
    unknown = sorted(set(settings) - set(Settings.names()))
    if unknown:
        raise ConfigError("with_runcontext", unknown, f"takes settings {Settings.names()}")
    resolved = Settings.load(overrides={"mode": mode, **settings})
    return RunContext(
        resolved.mode,
        resolved,
        on_progress=on_progress,
        on_log=on_log,
        detach=detach,
        skip_version_check=skip_version_check,
        fresh=fresh,
    )


def run(task: FunctionTask, *args: Any, **kwargs: Any) -> Run:
    """Run a task in the default mode (settings, else ``local``) and return its run handle."""
    return with_runcontext().run(task, *args, **kwargs)
