"""RunRecord and Attempt: JSON that round-trips and tolerates fields from newer versions."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from flyray import RunStatus
from flyray.store import Attempt, RunRecord, utc_now


def _record() -> RunRecord:
    return RunRecord(
        run_id="r0123456789",
        task="ray_env.train",
        mode="local-cluster",
        status=RunStatus.FAILED,
        started_at="2026-01-02T03:04:05.000006+00:00",
        ended_at="2026-01-02T03:14:05.000006+00:00",
        attempts=[
            Attempt(
                number=1,
                submission_id="flyray-r0123456789-1",
                status=RunStatus.FAILED,
                started_at="2026-01-02T03:04:05+00:00",
                message="exit 1",
            ),
            Attempt(number=2, submission_id="flyray-r0123456789-2", status=RunStatus.RUNNING),
        ],
        cluster={"dashboard_url": "http://127.0.0.1:8265"},
        message="the task raised ValueError",
        manifest_name="ray-env-train-r0123456789",
    )


def test_round_trip_through_json() -> None:
    record = _record()
    data = json.loads(json.dumps(record.to_dict()))
    assert RunRecord.from_dict(data) == record
    assert data["status"] == "FAILED"
    assert data["attempts"][0]["status"] == "FAILED"


def test_statuses_come_back_as_run_status() -> None:
    record = RunRecord.from_dict(json.loads(json.dumps(_record().to_dict())))
    assert record.status is RunStatus.FAILED
    assert record.attempts[1].status is RunStatus.RUNNING


def test_only_pending_and_running_go_on_and_only_lost_may_change_after_its_end() -> None:
    going = [status for status in RunStatus if not status.is_terminal()]
    changing = [status for status in RunStatus if not status.is_final()]
    assert going == [RunStatus.PENDING, RunStatus.RUNNING]
    assert changing == [*going, RunStatus.LOST]
    lost = RunRecord.from_dict({**_record().to_dict(), "status": "LOST"})
    assert lost.status is RunStatus.LOST and str(lost.status) == "LOST"


def test_defaults_of_a_new_record() -> None:
    record = RunRecord(run_id="r1", task="env.fn", mode="cluster")
    assert record.status is RunStatus.PENDING
    assert record.attempts == [] and record.cluster == {}
    created = datetime.fromisoformat(record.created_at)
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
    assert RunRecord.from_dict(record.to_dict()) == record


def test_unknown_keys_are_ignored() -> None:
    data = _record().to_dict()
    data["written_by"] = "flyray 9.0"
    data["attempts"][0]["node"] = "head"
    data["cluster"]["namespace"] = "ml"
    record = RunRecord.from_dict(data)
    assert record.attempts[0] == _record().attempts[0]
    assert record.cluster == {"dashboard_url": "http://127.0.0.1:8265", "namespace": "ml"}


def test_utc_now_is_iso_8601_utc() -> None:
    now = datetime.fromisoformat(utc_now())
    assert now.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - now).total_seconds()) < 5
