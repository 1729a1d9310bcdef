"""A run as the Jobs-API and kuberay executors hold it, and what their followers need of them."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from flyray.errors import (
    ClusterUnreachableError,
    RayClusterError,
    RayJobNotFoundError,
    TaskError,
)
from flyray.executors.base import LogCallback
from flyray.store.record import RunRecord, RunStatus, utc_now
from flyray.store.runstore import RunStore
from flyray.task.base import FunctionTask

__all__ = ["LOSING", "JobRun", "RunKeeper", "mark_lost", "no_interrupts", "refreshed_status"]

# A cluster that gives these cannot say what became of the run: the run is LOST, not FAILED.
LOSING = (ClusterUnreachableError, RayJobNotFoundError)


@dataclass
class JobRun:
    """A run: its task (None for an earlier run rebuilt from the store), manifest, record, error."""

    task: FunctionTask | None
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
    elif record.status is RunStatus.LOST and run.error is None:  # never the task's error
        run.error = RayClusterError(
            f"run {record.run_id} is LOST: {record.message}; `flyray runs show {record.run_id}` "
            "asks its cluster again",
            address=record.cluster.get("dashboard_url", ""),
        )
        run.error.cause = "lost"
    return record.status


def mark_lost(record: RunRecord, exc: BaseException) -> RunRecord:
    """Record the run as LOST: why (``exc``) and since when; a lost run keeps its first time."""
    if record.status is RunStatus.LOST:
        return record
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    record.status = RunStatus.LOST
    record.message = f"its cluster could not be asked since {when}: {exc}"
    if record.attempts and not record.attempts[-1].status.is_final():
        record.attempts[-1].status = RunStatus.LOST
        record.attempts[-1].message = record.message
    record.updated_at = utc_now()
    return record


class RunKeeper(Protocol):
    """What a follower needs of its executor: the run store, the log callback, record updates."""

    store: RunStore
    on_log: LogCallback

    def update(self, run: JobRun, **changes: Any) -> None:
        """Change the run's record and save it."""
