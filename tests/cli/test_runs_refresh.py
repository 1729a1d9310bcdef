"""``flyray runs list --refresh`` and the CLI's lines for a cluster that misbehaves.

The clusters are real sockets without Ray processes: a closed port (gone) and
``FakeDashboard`` (a tiny HTTP server that answers like a Ray dashboard, or refuses).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from flyray.cli.main import cli
from flyray.executors.localcluster.raystart import free_port
from flyray.store.record import Attempt, RunRecord, RunStatus
from flyray.store.runstore import RunStore
from tests.executors.jobs.fake_dashboard import FakeDashboard

TASKS = str(Path(__file__).parents[1] / "executors" / "lc_tasks.py")


@pytest.fixture
def store(tmp_path, monkeypatch) -> RunStore:
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLYRAY_RUN_STORE", str(tmp_path / "runs"))
    return RunStore(tmp_path / "runs")


def _detached(store: RunStore, run_id: str, address: str, status=RunStatus.RUNNING) -> None:
    """The record a detached cluster-mode run leaves behind."""
    store.save_record(
        RunRecord(
            run_id=run_id,
            task="lc_tasks.sleep_long",
            mode="cluster",
            status=status,
            attempts=[Attempt(1, f"{run_id}-1", status)],
            cluster={"dashboard_url": address},
        )
    )


def _row(output: str, run_id: str) -> list[str]:
    (line,) = [line for line in output.splitlines() if line.startswith(run_id)]
    return line.split()


def test_refresh_asks_each_going_run_s_cluster_and_lists_what_it_found(store):
    gone = f"http://127.0.0.1:{free_port()}"
    jobs = {"rdone000001-1": "SUCCEEDED", "rlost000002-1": "RUNNING"}
    with FakeDashboard(jobs=jobs) as dashboard, FakeDashboard(fail={"/api/": 401}) as locked:
        _detached(store, "rgone000001", gone)
        _detached(store, "rdone000001", dashboard.url)
        _detached(store, "rlost000002", dashboard.url, status=RunStatus.LOST)  # found again
        _detached(store, "rlock000001", locked.url)
        _detached(store, "rover000001", gone, status=RunStatus.FAILED)  # final: not asked
        plain = CliRunner().invoke(cli, ["runs", "list"])
        result = CliRunner().invoke(cli, ["runs", "list", "--refresh"])
    assert plain.exit_code == 0 and "LOST" not in _row(plain.output, "rgone000001")
    assert result.exit_code == 0, result.output
    statuses = {
        run_id: _row(result.output, run_id)[3]
        for run_id in (r.run_id for r in store.list_records())
    }
    assert statuses == {
        "rgone000001": "LOST",
        "rdone000001": "SUCCEEDED",
        "rlost000002": "RUNNING",
        "rlock000001": "RUNNING",
        "rover000001": "FAILED",
    }
    assert f"warning: run rlock000001 not refreshed: the Ray cluster at {locked.url} needs a " in (
        result.output
    )
    lost = store.load_record("rgone000001").message
    assert f"no Ray cluster answered at {gone} (connection refused)" in lost
    assert store.read_log("rdone000001") == "log of rdone000001-1\n"


def test_show_of_a_lost_run_says_why_and_since_when(store):
    gone = f"http://127.0.0.1:{free_port()}"
    _detached(store, "rgone000001", gone)
    result = CliRunner().invoke(cli, ["runs", "show", "rgone000001"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^status +LOST$", result.output, re.M)
    assert re.search(r"^message +its cluster could not be asked since 20", result.output, re.M)
    assert "#1  rgone000001-1  LOST" in result.output


def test_show_of_a_run_whose_cluster_refuses_the_token_warns_and_shows_the_record(store):
    with FakeDashboard(fail={"/api/": 403}) as locked:
        _detached(store, "rlock000001", locked.url)
        result = CliRunner().invoke(cli, ["runs", "show", "rlock000001"])
    assert result.exit_code == 0, result.output
    assert "warning: run rlock000001 not refreshed: the Ray cluster at" in result.output
    assert re.search(r"^status +RUNNING$", result.output, re.M)


def test_a_cluster_that_does_not_answer_is_one_error_line_not_the_task_s_failure(store):
    address = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli, ["run", "--mode", "cluster", "--address", address, TASKS, "sum_of_squares", "--n", "3"]
    )
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if "Error" in line or "failed" in line]
    assert errors == [
        f"Error: no Ray cluster answered at {address} (connection refused), so flyray could "
        "not connect: check that the cluster is up and that this is its dashboard address "
        f"(usually port 8265) (Ray said: Failed to connect to Ray at address: {address}.)"
    ]
    assert "Traceback" not in result.output


def test_refresh_goes_through_the_executor_of_each_run_s_mode(store, monkeypatch):
    """A kuberay run is refreshed by the kuberay executor's own hook: one executor per mode."""
    import flyray.cli.runs as runs_cli

    asked = []

    class KubeStandIn:
        def __init__(self, settings):
            asked.append("made")

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            asked.append("closed")

        def status(self, run_id):
            asked.append(run_id)
            record = store.load_record(run_id)
            record.status = RunStatus.SUCCEEDED
            store.save_record(record)
            return record.status

    real = runs_cli.executor_type
    monkeypatch.setattr(
        runs_cli, "executor_type", lambda mode: KubeStandIn if mode == "kuberay" else real(mode)
    )
    for n in (1, 2):
        created = f"2026-01-0{n}T00:00:00+00:00"
        store.save_record(
            RunRecord(run_id=f"rkube00000{n}", task="t", mode="kuberay", created_at=created)
        )
    result = CliRunner().invoke(cli, ["runs", "list", "--refresh"])
    assert result.exit_code == 0, result.output
    assert asked == ["made", "rkube000002", "rkube000001", "closed"]
    assert [_row(result.output, r)[3] for r in ("rkube000001", "rkube000002")] == ["SUCCEEDED"] * 2
