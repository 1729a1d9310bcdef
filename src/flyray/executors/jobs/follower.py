"""Following one run's Ray job through the Jobs API: every attempt, live logs, the deadline.

A ``JobFollower`` submits the manifest's entrypoint and runtime env, streams the job's logs,
stops it at the deadline, retries with a fresh submission id (after the task's backoff, never
after a NonRecoverableError) and records every attempt in the run's record. A client may run
the job under another submission id than the one asked for (a warm cluster's standby driver,
``warm.standby``): ``submit_job`` returns it, and the attempt records and follows that one.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

from flyray.errors import NonRecoverableError, RayClusterError, TaskError, TaskTimeoutError
from flyray.executors.base import ProgressCallback
from flyray.executors.jobs.run import JobRun, RunKeeper
from flyray.executors.shipping import missing_flyray
from flyray.store.record import Attempt, RunStatus, utc_now

__all__ = ["FAST_POLL_SECONDS", "POLL_SECONDS", "JobFollower"]

POLL_SECONDS = 0.5  # how often a job's new log lines are fetched, and later its status
FAST_POLL_SECONDS = 0.1  # how often its status is fetched in its first FAST_POLL_FOR seconds,
FAST_POLL_FOR = 30.0  # so that a short job (e.g. on a warm cluster) is seen to end at once


class JobFollower:
    """Submits a run's job and follows it to the end: every attempt, logs, deadline."""

    def __init__(
        self, executor: RunKeeper, run: JobRun, client: Any, report: ProgressCallback
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
        submitted = self.client.submit_job(
            entrypoint=spec["entrypoint"],
            runtime_env=yaml.safe_load(spec.get("runtimeEnvYAML") or "{}"),
            submission_id=submission_id,
        )
        if submitted != submission_id:  # the job runs under another id (a standby driver's)
            attempt.submission_id = submission_id = submitted
            self.executor.update(self.run_)
        try:
            status = self._follow(submission_id, started)
        except KeyboardInterrupt:
            self.client.stop_job(submission_id)
            self.report(f"stopped Ray job {submission_id}")
            attempt.status, attempt.message = RunStatus.STOPPED, "interrupted (Ctrl-C)"
            raise
        finally:
            self._save_log(run_id, submission_id, failing=sys.exc_info()[1] is not None)
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

    def _save_log(self, run_id: str, submission_id: str, *, failing: bool) -> None:
        """Store the job's log; while an error is raised, a cluster's error here is dropped:
        a cluster that is gone fails this call too, and the error raised already says so."""
        with contextlib.suppress(*((RayClusterError,) if failing else ())):
            self.executor.store.write_log(run_id, self.client.get_job_logs(submission_id))

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
        why = missing_flyray(info.message, shipped=self.executor.settings.ship_flyray)
        message = (
            f"Ray job {submission_id} of run {run_id} ended {info.status.value}{kind}: "
            f"{why or info.message}; see `flyray logs {run_id}`"
        )
        return TaskError(message, run_id=run_id, logs=self._log_uri())

    def _log_uri(self) -> str:
        return self.executor.store.uri("runs", self.run_.record.run_id, "logs", "job.log")
