"""``RunRecord``: what the run store knows about one run, as plain JSON that round-trips.

Executors own the record: they create it, and update status, attempts and timestamps as the
run goes. ``from_dict`` ignores keys it does not know, so an older flyray can still list runs
written by a newer one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

__all__ = ["Attempt", "RunRecord", "RunStatus", "utc_now"]


class RunStatus(str, Enum):
    """Where a run is; prints as users see it.

    ``LOST``: the cluster that runs it could not be asked (unreachable, or it no longer knows
    the job); the record's message says why and since when. Nothing waits on a lost run, but
    it is not final: when its cluster answers again, a refresh records what became of it.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    LOST = "LOST"

    def is_terminal(self) -> bool:
        """True once nothing will follow the run any more (waiting for it ends)."""
        return self is not RunStatus.PENDING and self is not RunStatus.RUNNING

    def is_final(self) -> bool:
        """True once the run will not change any more (a lost run may be found again)."""
        return self.is_terminal() and self is not RunStatus.LOST

    def __str__(self) -> str:
        return self.value


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string (``2026-01-31T12:00:00.123456+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass
class Attempt:
    """One submission of a run (a run is retried by submitting it again)."""

    number: int
    submission_id: str | None = None
    status: RunStatus = RunStatus.PENDING
    started_at: str | None = None
    ended_at: str | None = None
    message: str | None = None
    error_kind: str | None = None  # "user" (the task raised) or "infrastructure" (Ray said so)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values."""
        return {**dataclasses.asdict(self), "status": self.status.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        """The attempt ``to_dict`` described; unknown keys are ignored."""
        values = _known(cls, data)
        values["status"] = RunStatus(values.get("status", RunStatus.PENDING))
        return cls(**values)


@dataclass
class RunRecord:
    """One run: its task, mode, status, timestamps, attempts and where its cluster is."""

    run_id: str
    task: str
    mode: str
    status: RunStatus = RunStatus.PENDING
    created_at: str = field(default_factory=utc_now)
    updated_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    cluster: dict[str, str] = field(default_factory=dict)
    message: str | None = None
    manifest_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["status"] = self.status.value
        values["attempts"] = [a.to_dict() for a in self.attempts]
        values["cluster"] = dict(self.cluster)
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """The record ``to_dict`` described; unknown keys are ignored."""
        values = _known(cls, data)
        values["status"] = RunStatus(values.get("status", RunStatus.PENDING))
        values["attempts"] = [Attempt.from_dict(a) for a in values.get("attempts") or []]
        values["cluster"] = {str(k): str(v) for k, v in (values.get("cluster") or {}).items()}
        return cls(**values)


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The items of ``data`` that are fields of the dataclass ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in data.items() if key in names}
