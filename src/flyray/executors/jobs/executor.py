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
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flyray.config.settings import Settings
from flyray.errors import (
    ConfigError,
    NonRecoverableError,
    RunStoreError,
    TaskError,
    TaskTimeoutError,
)
from flyray.executors.base import Executor, LogCallback, ProgressCallback, RunOptions, RunStatus
from flyray.store.record import Attempt, RunRecord, utc_now
from flyray.store.runstore import RunStore
from flyray.task.base import FunctionTask

__all__ = [
    "FAST_POLL_SECONDS",
    "POLL_SECONDS",
    "JobExecutor",
    "JobFollower",
    "JobRun",
    "no_interrupts",
    "refreshed_status",
]

POLL_SECONDS = 0.5  # how often a job's new log lines are fetched, and later its status
FAST_POLL_SECONDS = 0.1  # how often its status is fetched in its first FAST_POLL_FOR seconds,
FAST_POLL_FOR = 30.0  # so that a short job (e.g. on a warm cluster) is seen to end at once


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
            return JobFollower(self, run, client, report).run()
        except KeyboardInterrupt as exc:
            run.error = exc
            self.update(run, status=RunStatus.STOPPED, message="interrupted (Ctrl-C)")
            raise


class JobFollower:
    """Submits a run's job and follows it to the end: every attempt, logs, deadline."""

    def __init__(
        self, executor: JobExecutor, run: JobRun, client: Any, report: ProgressCallback
    ) -> None:
        self.executor, self.run_, self.client, self.report = executor, run, client, report
        spec = run.manifest["spec"]
        self.deadline = spec.get("activeDeadlineSeconds")
        self.attempts = spec.get("backoffLimit", 0) + 1

    def run(self) -> RunStatus:
        """Every attempt until one succeeds, the retries are used up or the deadline passes."""
        started = time.monotonic()
        for number in range(1, self.attempts + 1):
            status = self._attempt(number, started)
            if status is RunStatus.SUCCEEDED or isinstance(self.run_.error, TaskTimeoutError):
                break
            if getattr(self.run_.error, "code", None) == NonRecoverableError.__name__:
                self.report(f"attempt {number} failed with a NonRecoverableError: not retried")
                break
            if number < self.attempts:
                self.report(f"attempt {number} failed; retrying ({number + 1}/{self.attempts})")
                self._back_off(number)
        self.executor.update(self.run_, status=status)
        return status

    def _back_off(self, number: int) -> None:
        """Wait the task's ``RetryStrategy`` backoff before attempt ``number + 1``."""
        backoff = self.run_.task.retry_strategy.backoff
        if backoff is None:
            return
        delay = backoff.compute_delay(number - 1).total_seconds()
        if delay > 0:
            self.report(f"backing off {delay:g} s (RetryStrategy.backoff)")
            time.sleep(delay)

    def _attempt(self, number: int, started: float) -> RunStatus:
        import yaml

        run_id = self.run_.record.run_id
        spec = self.run_.manifest["spec"]
        submission_id = f"{run_id}-{number}"
        attempt = Attempt(number=number, submission_id=submission_id, started_at=utc_now())
        self.run_.record.attempts.append(attempt)
        self.executor.update(self.run_)
        self.client.submit_job(
            entrypoint=spec["entrypoint"],
            runtime_env=yaml.safe_load(spec.get("runtimeEnvYAML") or "{}"),
            submission_id=submission_id,
        )
        try:
            status = self._follow(submission_id, started)
        except KeyboardInterrupt:
            self.client.stop_job(submission_id)
            self.report(f"stopped Ray job {submission_id}")
            attempt.status, attempt.message = RunStatus.STOPPED, "interrupted (Ctrl-C)"
            raise
        finally:
            self.executor.store.write_log(run_id, self.client.get_job_logs(submission_id))
            attempt.ended_at = utc_now()
        attempt.status = status
        if status is not RunStatus.SUCCEEDED:
            if not isinstance(self.run_.error, TaskTimeoutError):
                self.run_.error = self._job_error(submission_id, attempt)
            attempt.message = str(self.run_.error)
        else:
            self.run_.error = None
        self.executor.update(self.run_)
        return status

    def _follow(self, submission_id: str, started: float) -> RunStatus:
        from ray.job_submission import JobStatus

        shown, last_status, logs_due, began = 0, None, 0.0, time.monotonic()
        while True:
            status = self.client.get_job_status(submission_id)
            now = time.monotonic()
            if status.is_terminal() or now >= logs_due:
                logs = self.client.get_job_logs(submission_id)
                if len(logs) > shown:
                    self.executor.on_log(logs[shown:])
                    shown = len(logs)
                logs_due = now + POLL_SECONDS
            if status != last_status:
                self.report(f"job {submission_id} {status.value}")
                last_status = status
            if status.is_terminal():
                return RunStatus.SUCCEEDED if status == JobStatus.SUCCEEDED else RunStatus.FAILED
            if self.deadline and time.monotonic() - started > self.deadline:
                self.client.stop_job(submission_id)
                self.run_.error = TaskTimeoutError(
                    f"run {self.run_.record.run_id} passed its deadline of {self.deadline} s "
                    f"(the task's timeout); Ray job {submission_id} was stopped",
                    run_id=self.run_.record.run_id,
                    logs=self._log_uri(),
                )
                return RunStatus.FAILED
            time.sleep(FAST_POLL_SECONDS if now - began < FAST_POLL_FOR else POLL_SECONDS)

    def _job_error(self, submission_id: str, attempt: Attempt) -> TaskError:
        """The task's own error from the run store, else what Ray says about the job."""
        run_id = self.run_.record.run_id
        error = self.executor.store.read_error(run_id)
        if error is not None:
            attempt.error_kind = "user"
            message = (
                f"task {self.run_.task.name} failed in run {run_id}: {error.type}: {error.message}"
            )
            return TaskError(
                message,
                error.type,
                run_id=run_id,
                remote_traceback=error.traceback,
                logs=self._log_uri(),
            )
        info = self.client.get_job_info(submission_id)
        attempt.error_kind = "infrastructure"
        kind = f" ({info.error_type})" if getattr(info, "error_type", None) else ""
        message = (
            f"Ray job {submission_id} of run {run_id} ended {info.status.value}{kind}: "
            f"{info.message}; see `flyray logs {run_id}`"
        )
        return TaskError(message, run_id=run_id, logs=self._log_uri())

    def _log_uri(self) -> str:
        return self.executor.store.uri("runs", self.run_.record.run_id, "logs", "job.log")
