"""What every mode that runs a task as a Ray job shares: preparing the run, following the job.

A run is prepared once (code bundle, RayJob manifest, inputs, a PENDING record in the run
store); then a ``JobFollower`` submits the manifest's entrypoint and runtime env through the
Ray Jobs API, streams its logs, enforces the deadline, retries with a fresh submission id
and records every attempt. ``local-cluster`` and ``cluster`` differ only in where the Jobs
API is.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flyray.config.settings import Settings
from flyray.errors import (
    ConfigError,
    RunStoreError,
    TaskError,
)
from flyray.executors.base import Executor, LogCallback, ProgressCallback, RunOptions
from flyray.store.record import RunRecord, RunStatus, utc_now
from flyray.store.runstore import RunStore
from flyray.task.base import FunctionTask

__all__ = [
    "JobExecutor",
    "JobRun",
    "no_interrupts",
    "refreshed_status",
]


@dataclass
class JobRun:
    """A run in this process: its task, manifest, record and (once failed) its error."""

    task: FunctionTask
    manifest: dict[str, Any]
    record: RunRecord
    error: BaseException | None = None


@contextlib.contextmanager
def no_interrupts() -> Iterator[None]:
    """Hold off a second Ctrl-C while a teardown runs (main thread only), so it completes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def refreshed_status(store: RunStore, run: JobRun) -> RunStatus:
    """The status of a run whose record was just refreshed; a failure keeps its error."""
    record = run.record
    if record.status is RunStatus.FAILED and run.error is None:
        error = store.read_error(record.run_id)
        run.error = TaskError(
            record.message or f"run {record.run_id} failed; see `flyray logs {record.run_id}`",
            run_id=record.run_id,
            remote_traceback=error.traceback if error is not None else None,
            logs=store.uri("runs", record.run_id, "logs", "job.log"),
        )
    elif record.status is RunStatus.STOPPED and run.error is None:
        run.error = TaskError(f"run {record.run_id} was stopped", run_id=record.run_id)
    return record.status


class JobExecutor(Executor):
    """Executors whose runs are Ray jobs recorded in the run store."""

    def __init__(self, settings: Settings | None = None, *, on_log: LogCallback | None = None):
        self.settings = settings or Settings.load()
        self.store = RunStore(self.settings.run_store_path())
        self.on_log = on_log or sys.stderr.write
        self._runs: dict[str, JobRun] = {}

    def check(self, task: FunctionTask) -> None:
        """Refuse a task this mode cannot run, before anything is written."""

    def submit(
        self,
        task: FunctionTask,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        run_id: str,
        options: RunOptions | None = None,
    ) -> None:
        """Bundle the code, render the manifest, store inputs, manifest and a PENDING record.

        A run id the run store already holds is refused: its record would be overwritten.
        """
        from flyray.manifest.rayjob import dump_yaml

        self.check(task)
        self._check_new(run_id)
        manifest = self.render(task, run_id, options or RunOptions())
        record = RunRecord(
            run_id=run_id,
            task=task.name,
            mode=self.mode,
            manifest_name=manifest["metadata"]["name"],
        )
        self.store.write_inputs(run_id, tuple(args), dict(kwargs))
        self.store.write_manifest(run_id, dump_yaml(manifest))
        self.store.save_record(record)
        self._runs[run_id] = JobRun(task, manifest, record)

    def _check_new(self, run_id: str) -> None:
        try:
            self.store.load_record(run_id)
        except RunStoreError:
            return
        raise ConfigError(
            "name",
            run_id,
            f"is the name of a run the run store {self.store.root} already holds: pick another "
            "name, or leave it out for a new random one",
        )

    def render(
        self, task: FunctionTask, run_id: str, options: RunOptions | None = None
    ) -> dict[str, Any]:
        """The run's RayJob manifest (its code bundle stored in the run store)."""
        from flyray.executors.render import render_for_run

        return render_for_run(
            task,
            run_id=run_id,
            store=self.store,
            settings=self.settings,
            mode=self.mode,
            options=options,
        )

    def location(self, run_id: str) -> str:
        """The run's folder in the run store, where ``flyray runs show`` reads it."""
        return self.store.uri("runs", run_id)

    def result(self, run_id: str) -> Any:
        """The task's return value read from the run store, or the run's error raised."""
        run = self._runs[run_id]
        if run.error is not None:
            raise run.error
        return self.store.read_outputs(run_id)

    def cancel(self, run_id: str) -> None:
        """Stop a run that has not started; a running one stops on Ctrl-C in this process."""
        run = self._runs[run_id]
        if not run.record.status.is_terminal():
            self.update(run, status=RunStatus.STOPPED, message="cancelled")

    def update(self, run: JobRun, **changes: Any) -> None:
        """Change the run's record and save it."""
        for key, value in changes.items():
            setattr(run.record, key, value)
        run.record.updated_at = utc_now()
        self.store.save_record(run.record)

    def follow(self, run: JobRun, client: Any, report: ProgressCallback) -> RunStatus:
        """Run the job on the cluster behind ``client``; Ctrl-C stops the Ray job first."""
        self.update(run, status=RunStatus.RUNNING, started_at=run.record.started_at or utc_now())
        try:
            from flyray.executors.jobs.follower import JobFollower

            return JobFollower(self, run, client, report).run()
        except KeyboardInterrupt as exc:
            run.error = exc
            self.update(run, status=RunStatus.STOPPED, message="interrupted (Ctrl-C)")
            raise
