"""``flyray runs list``, ``runs show``, ``logs`` and ``cancel``, over a run store in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flyray.cli.main import cli
from flyray.store.record import Attempt, RunRecord, RunStatus
from flyray.store.runstore import ErrorInfo, RunStore

OLD, NEW = "r00000000aa", "r00000000bb"
LOG = "Running entrypoint for job r00000000aa-1\n285\n"


def _failure() -> ErrorInfo:
    """The ErrorInfo of an exception raised for real, so it has a traceback."""

    def load_shard(index: int) -> None:
        raise ValueError(f"shard {index} is empty")

    try:
        load_shard(7)
    except ValueError as exc:
        return ErrorInfo.from_exception(exc)
    raise AssertionError("unreachable")


@pytest.fixture
def store_dir(tmp_path: Path) -> str:
    """A store with an older succeeded run (with a log) and a newer failed one (with an error)."""
    store = RunStore(tmp_path / "store")
    succeeded = RunRecord(
        run_id=OLD,
        task="seed_env.square_sum",
        mode="local-cluster",
        status=RunStatus.SUCCEEDED,
        created_at="2026-01-31T12:00:00.000000+00:00",
        started_at="2026-01-31T12:00:01.000000+00:00",
        ended_at="2026-01-31T12:00:13.500000+00:00",
        attempts=[Attempt(1, f"{OLD}-1", RunStatus.SUCCEEDED, "2026-01-31T12:00:02+00:00")],
        cluster={"dashboard_url": "http://127.0.0.1:8265"},
        manifest_name=f"seed-env-square-sum-{OLD}",
    )
    failed = RunRecord(
        run_id=NEW,
        task="seed_env.load",
        mode="local-cluster",
        status=RunStatus.FAILED,
        created_at="2026-02-01T09:30:00.000000+00:00",
        started_at="2026-02-01T09:30:00.000000+00:00",
        ended_at="2026-02-01T09:32:05.000000+00:00",
        attempts=[
            Attempt(n, f"{NEW}-{n}", RunStatus.FAILED, message="ValueError: shard 7 is empty")
            for n in (1, 2)
        ],
        message="task seed_env.load failed",
    )
    for record in (succeeded, failed):
        store.save_record(record)
    store.write_log(OLD, LOG)
    store.write_error(NEW, _failure())
    return str(tmp_path / "store")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_list_shows_every_run_newest_first(store_dir):
    result = invoke("runs", "list", "--run-store", store_dir)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index(NEW) < out.index(OLD)
    for text in (
        "run id",
        "attempts",
        "SUCCEEDED",
        "FAILED",
        "local-cluster",
        "seed_env.square_sum",
    ):
        assert text in out
    assert "2026-01-31 12:00:00" in out and "12.5 s" in out and "2m 05s" in out


def test_list_limit(store_dir):
    result = invoke("runs", "list", "--run-store", store_dir, "--limit", "1")
    assert NEW in result.stdout and OLD not in result.stdout
    assert "1 of 2 runs" in result.stderr


def test_list_of_an_empty_store(tmp_path):
    result = invoke("runs", "list", "--run-store", str(tmp_path / "nothing"))
    assert result.exit_code == 0 and result.stdout == ""
    assert f"no runs in {tmp_path / 'nothing'}" in result.stderr


def test_the_store_comes_from_the_settings(store_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("FLYRAY_RUN_STORE", store_dir)
    assert NEW in invoke("runs", "list").stdout
    monkeypatch.delenv("FLYRAY_RUN_STORE")
    (tmp_path / "pyproject.toml").write_text(f'[tool.flyray]\nrun_store = "{store_dir}"\n')
    monkeypatch.chdir(tmp_path)
    assert OLD in invoke("logs", OLD).stdout


def test_show_a_failed_run_with_its_traceback(store_dir):
    result = invoke("runs", "show", NEW, "--run-store", store_dir)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "FAILED" in out and "seed_env.load" in out and "2m 05s" in out
    assert f"#2  {NEW}-2  FAILED" in out
    assert "ValueError: shard 7 is empty" in out
    assert "remote traceback:" in out and "in load_shard" in out
    assert RunStore(store_dir).uri("runs", NEW, "logs", "job.log") in out
    assert RunStore(store_dir).uri("runs", NEW, "inputs.pkl") in out


def test_show_a_succeeded_run_has_its_cluster_and_no_error(store_dir):
    out = invoke("runs", "show", OLD, "--run-store", store_dir).stdout
    assert "http://127.0.0.1:8265" in out and f"seed-env-square-sum-{OLD}" in out
    assert "error" not in out and "traceback" not in out


def test_show_json_round_trips(store_dir):
    result = invoke("runs", "show", NEW, "--run-store", store_dir, "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert RunRecord.from_dict(data) == RunStore(store_dir).load_record(NEW)
    assert ErrorInfo.from_dict(data["error"]) == RunStore(store_dir).read_error(NEW)
    assert set(data["files"]) == {"logs", "manifest", "inputs"}
    assert (
        json.loads(invoke("runs", "show", OLD, "--run-store", store_dir, "-o", "json").stdout)[
            "error"
        ]
        is None
    )


def test_logs_prints_the_job_log(store_dir):
    result = invoke("logs", OLD, "--run-store", store_dir)
    assert result.exit_code == 0 and result.stdout == LOG


def test_logs_of_a_run_without_one(store_dir):
    result = invoke("logs", NEW, "--run-store", store_dir)
    assert result.exit_code == 0 and result.stdout == ""
    assert f"run {NEW} (FAILED) has no job log yet" in result.stderr


@pytest.mark.parametrize("command", [("runs", "show"), ("logs",)])
def test_unknown_run_is_one_helpful_error(store_dir, command):
    result = invoke(*command, "r404", "--run-store", store_dir)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: no run 'r404' in the run store")
    assert "flyray runs list" in result.stderr and "Traceback" not in result.output


def test_invalid_run_id_is_one_error(store_dir):
    result = invoke("runs", "show", "../etc", "--run-store", store_dir)
    assert result.exit_code == 1 and "is not a valid run id" in result.stderr


def test_logs_follow_of_an_ended_run_prints_it_once(store_dir):
    result = invoke("logs", "--follow", OLD, "--run-store", store_dir)
    assert result.exit_code == 0 and result.stdout == LOG


def test_cancel_of_an_ended_run_says_so(store_dir):
    result = invoke("cancel", OLD, "--run-store", store_dir)
    assert result.exit_code == 0
    assert f"run {OLD} had already ended: SUCCEEDED" in result.stderr


def test_cancel_of_a_going_local_cluster_run_is_refused_with_the_reason(store_dir):
    store = RunStore(store_dir)
    record = store.load_record(OLD)
    record.status = RunStatus.RUNNING
    store.save_record(record)
    result = invoke("cancel", OLD, "--run-store", store_dir)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "ends with the process that started it (Ctrl-C there)" in result.stderr
    assert store.load_record(OLD).status is RunStatus.RUNNING
