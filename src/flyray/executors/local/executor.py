"""``local`` mode: the task runs in the caller's process (its plugin connects to Ray)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flyray._aio import run_sync
from flyray.config.settings import Settings
from flyray.errors import ConfigError
from flyray.executors.base import Executor, LogCallback, ProgressCallback, RunOptions
from flyray.store.record import RunStatus
from flyray.task.base import FunctionTask

__all__ = ["LocalExecutor"]


@dataclass
class _LocalRun:
    task: FunctionTask
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    env_vars: Mapping[str, str]
    status: RunStatus = RunStatus.PENDING
    outcome: Any = None
    error: BaseException | None = field(default=None, repr=False)


class LocalExecutor(Executor):
    """Runs pre() -> function -> post() here; the task's own exception reaches the caller."""

    mode = "local"

    def __init__(self, settings: Settings | None = None, *, on_log: LogCallback | None = None):
        """Settings and log callback are accepted for symmetry; in-process runs need neither."""
        self._runs: dict[str, _LocalRun] = {}

    def submit(
        self,
        task: FunctionTask,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        run_id: str,
        options: RunOptions | None = None,
    ) -> None:
        """Queue the run; in-process runs start when ``wait`` is called.

        Of the options only ``env_vars`` apply here: there are no Kubernetes objects.
        """
        env_vars = (options or RunOptions()).env_vars
        self._runs[run_id] = _LocalRun(task, args, kwargs, env_vars)

    def wait(self, run_id: str, *, on_progress: ProgressCallback | None = None) -> RunStatus:
        """Run the task to the end in this process."""
        run = self._get(run_id)
        if run.status.is_terminal():
            return run.status
        run.status = RunStatus.RUNNING
        try:
            run.outcome = run_sync(
                run.task.run_locally(
                    run.args, run.kwargs, on_phase=on_progress, env_vars=run.env_vars
                )
            )
            run.status = RunStatus.SUCCEEDED
        except (Exception, KeyboardInterrupt) as exc:
            run.error = exc
            run.status = (
                RunStatus.STOPPED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            )
        return run.status

    def result(self, run_id: str) -> Any:
        """The return value, or the task's own exception raised again."""
        run = self._get(run_id)
        if run.error is not None:
            raise run.error
        return run.outcome

    def status(self, run_id: str) -> RunStatus:
        """The run's status in this process (local runs are not kept anywhere else)."""
        return self._get(run_id).status

    def logs(self, run_id: str, *, follow: bool = False) -> Iterator[str]:
        """Nothing: a local run's output goes straight to this process's stdout and stderr."""
        self._get(run_id)
        return iter(())

    def cancel(self, run_id: str) -> str:
        """A queued run is dropped; a run in progress stops with Ctrl-C in this process."""
        run = self._get(run_id)
        if run.status.is_terminal():
            return f"run {run_id} had already ended: {run.status.value}"
        run.status = RunStatus.STOPPED
        return f"run {run_id} dropped before it started"

    def cleanup(self) -> None:
        """Nothing to release: the task's own Ray connection is its plugin's."""

    def _get(self, run_id: str) -> _LocalRun:
        try:
            return self._runs[run_id]
        except KeyError:
            raise ConfigError(
                "run_id",
                run_id,
                "is not a run of this process: local runs are not kept in a run store",
            ) from None
