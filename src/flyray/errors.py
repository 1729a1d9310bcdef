"""The flyray exception tree, split by where things fail rather than by backend.

    FlyrayError
    ├── ConfigError             bad configuration: names the field path, the value and the rule
    │   ├── PluginNotFoundError no task plugin is registered for a plugin_config's type
    │   └── TaskLoadError       a task could not be found or loaded from a file or module
    ├── ManifestError           a configuration that cannot be rendered for the target
    ├── RunStoreError           a run's record, data or code bundle cannot be stored or read
    ├── SubmissionError         a cluster could not be reached, authenticated or started
    │   └── NodeStartError      a node of a local cluster did not come up (in executors.nodes)
    └── TaskError               the task ran and failed: run id, remote traceback, logs
        └── TaskTimeoutError    the task ran longer than its timeout

In ``local`` mode the task runs in the caller's process, so its own exception reaches the
caller unchanged; ``TaskError`` is for runs whose code ran somewhere else.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "FlyrayError",
    "ManifestError",
    "PluginNotFoundError",
    "RunStoreError",
    "SubmissionError",
    "TaskError",
    "TaskLoadError",
    "TaskTimeoutError",
]


class FlyrayError(Exception):
    """Root of every error flyray raises on purpose."""


class ConfigError(FlyrayError, ValueError):
    """A configuration value breaks a rule; keeps the field path, the value and the rule."""

    def __init__(self, field: str, value: Any, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field} {rule}; got {value!r}")


class PluginNotFoundError(ConfigError):
    """No plugin is registered for the type of an environment's ``plugin_config``."""


class TaskLoadError(ConfigError):
    """A task could not be loaded from the file or module the user named."""


class ManifestError(FlyrayError):
    """A valid configuration that cannot be expressed for the chosen target."""


class RunStoreError(FlyrayError):
    """A run's record, inputs, outputs or code bundle cannot be written or read back.

    The message names the run and the store, and says what to do (e.g. `flyray runs list`).
    """


class SubmissionError(FlyrayError):
    """Flyray could not reach, authenticate with or start the cluster it was asked to use."""


class TaskError(FlyrayError):
    """A task that ran somewhere else failed; carries what is needed to find out why."""

    def __init__(
        self,
        message: str,
        *,
        run_id: str | None = None,
        remote_traceback: str | None = None,
        logs: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.remote_traceback = remote_traceback
        self.logs = logs
        super().__init__(message)


class TaskTimeoutError(TaskError, TimeoutError):
    """The task did not finish within its ``timeout``."""
