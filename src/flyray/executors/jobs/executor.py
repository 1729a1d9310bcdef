"""What every mode that runs a task as a Ray job shares: preparing the run, following the job.

A run is prepared once (code bundle, RayJob manifest, inputs, a PENDING record in the run
store); then a ``JobFollower`` submits the manifest's entrypoint and runtime env through the
Ray Jobs API, streams its logs, enforces the deadline, retries with a fresh submission id
and records every attempt. ``local-cluster`` and ``cluster`` differ only in where the Jobs
API is.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

from flyray.config.settings import Settings
from flyray.errors import ConfigError, RunStoreError
from flyray.executors.base import Executor, LogCallback, ProgressCallback, RunOptions
from flyray.executors.jobs.client import JobsClientFactory, ray_jobs_client
from flyray.executors.jobs.follower import JobFollower
from flyray.executors.jobs.run import LOSING, JobRun, mark_lost, refreshed_status
from flyray.store.record import RunRecord, RunStatus, utc_now
from flyray.store.runstore import RunStore
from flyray.task.base import FunctionTask

__all__ = ["LOG_POLL_SECONDS", "JobExecutor"]


LOG_POLL_SECONDS = 1.0  # how often ``logs(follow=True)`` looks for more of a going run's log


class JobExecutor(Executor):
    """Executors whose runs are recorded in the run store: status, logs and cancel read it.

    ``jobs_client`` makes the client of a Ray Jobs API from its address and headers (Ray's
    ``JobSubmissionClient`` by default; tests pass a fake, as httpx's ``MockTransport``).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        on_log: LogCallback | None = None,
        jobs_client: JobsClientFactory | None = None,
    ) -> None:
        self.settings = settings or Settings.load()
        self.store = RunStore(self.settings.run_store_path())
        self.on_log = on_log or sys.stderr.write
        self.jobs_client = jobs_client or ray_jobs_client
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
        An object store that does not answer (refused, bad credentials, no bucket) is refused
        first, before anything is written or started (``store.preflight``).
        """
        from flyray.manifest.serialization import dump_yaml
        from flyray.store.preflight import check_reachable

        self.check(task)
        check_reachable(self.store)
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
        """The task's return value from the run store, or the run's error raised.

        A detached run that goes on has none yet: None (``flyray runs show`` tells more).
        """
        run = self.job_run(run_id)
        if run.error is not None:
            raise run.error
        if run.record.status is RunStatus.RUNNING:
            return None
        return self.store.read_outputs(run_id)

    def job_run(self, run_id: str) -> JobRun:
        """A run of this executor, else an earlier run of this mode rebuilt from its record."""
        if run_id in self._runs:
            return self._runs[run_id]
        import yaml

        record = self.store.load_record(run_id)
        if record.mode != self.mode:
            raise ConfigError("RUN", run_id, f"is a {record.mode} run, not a {self.mode} run")
        manifest = yaml.safe_load(self.store.read_manifest(run_id) or "") or {}
        self._runs[run_id] = JobRun(None, manifest, record)
        return self._runs[run_id]

    def status(self, run_id: str) -> RunStatus:
        """The run's status now: its record, brought up to date from its cluster if it goes on
        (or is LOST: its cluster may answer again)."""
        run = self.job_run(run_id)
        if not run.record.status.is_final():
            was = run.record.status
            run.record = self.refresh_record(self.store.load_record(run_id))
            if was is RunStatus.LOST and run.record.status is not RunStatus.LOST:
                run.error = None  # its cluster answered again: the run is not lost any more
        return refreshed_status(self.store, run)

    def refresh_record(self, record: RunRecord) -> RunRecord:
        """A going run's record brought up to date from where it runs (default: as stored)."""
        return record

    def logs(self, run_id: str, *, follow: bool = False) -> Iterator[str]:
        """The run's stored job log (refreshed from its cluster first); ``follow``: as it grows."""
        shown = 0
        while True:
            ended = self.status(run_id).is_terminal()
            text = self.store.read_log(run_id)
            if len(text) > shown:
                yield text[shown:]
                shown = len(text)
            if ended or not follow:
                return
            time.sleep(LOG_POLL_SECONDS)

    def cancel(self, run_id: str) -> str:
        """Stop the run: one not started here is dropped; else ``stop`` ends it where it runs."""
        run = self.job_run(run_id)
        if run.task is not None and run.record.status is RunStatus.PENDING:
            self.update(run, status=RunStatus.STOPPED, message="cancelled")
            return f"run {run_id} cancelled before it started"
        self.status(run_id)
        if run.record.status is RunStatus.LOST:
            return (
                f"run {run_id} is LOST, so there is nothing flyray can stop: {run.record.message}"
            )
        if run.record.status.is_terminal():
            return f"run {run_id} had already ended: {run.record.status.value}"
        return self.stop(run)

    def cleanup(self) -> None:
        """Nothing to release: a Jobs API client holds no connection between calls."""

    def stop(self, run: JobRun) -> str:
        """End a going run that this process does not follow; refused by modes that cannot."""
        raise ConfigError(
            "RUN",
            run.record.run_id,
            f"is a {self.mode} run, which ends with the process that started it (Ctrl-C there); "
            "only cluster and kuberay runs outlive flyray",
        )

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
        except LOSING as exc:  # the cluster cannot say how the job ends: LOST, with the reason
            run.error = exc
            self.store.save_record(mark_lost(run.record, exc))
            raise
        except Exception as exc:  # e.g. the cluster failed a call: the record says so
            run.error = exc
            self.update(run, status=RunStatus.FAILED, message=str(exc), ended_at=utc_now())
            raise
