"""Real clusters that misbehave: a job the cluster does not know, and a cluster that dies.

The session cluster answers for an unknown job id; a private cluster started here runs a
detached ``cluster``-mode run and is then stopped under it: ``flyray runs list --refresh``
must show the run LOST with the reason, not RUNNING forever.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import flyray
from flyray.cli.main import cli
from flyray.errors import RayJobNotFoundError
from flyray.executors.jobs.client import connect
from flyray.executors.localcluster.cluster import LocalRayCluster
from flyray.executors.localcluster.raystart import NodeSpec
from flyray.store.record import Attempt, RunRecord, RunStatus
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task

pytestmark = pytest.mark.slow

TASKS = str(Path(__file__).parent.parent / "lc_tasks.py")


def _use(cluster: LocalRayCluster, monkeypatch: pytest.MonkeyPatch, store: str) -> None:
    for name, value in cluster.auth_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FLYRAY_ADDRESS", cluster.dashboard_url)
    monkeypatch.setenv("FLYRAY_RUN_STORE", store)


def test_an_unknown_job_id_on_a_real_cluster(ray_cluster, monkeypatch, tmp_path):
    client = connect(ray_cluster.dashboard_url, ray_cluster.auth_headers(), skip_version_check=True)
    with pytest.raises(RayJobNotFoundError) as info:
        client.get_job_status("rnosuchrun-1")
    assert f"the Ray cluster at {ray_cluster.dashboard_url} does not know Ray job" in str(
        info.value
    )
    assert info.value.ray_message.endswith("Job rnosuchrun-1 does not exist.")

    store = str(tmp_path / "runs")
    _use(ray_cluster, monkeypatch, store)
    RunStore(store).save_record(
        RunRecord(
            run_id="rnosuchrun",
            task="lc_tasks.sleep_long",
            mode="cluster",
            status=RunStatus.RUNNING,
            attempts=[Attempt(1, "rnosuchrun-1", RunStatus.RUNNING)],
            cluster={"dashboard_url": ray_cluster.dashboard_url},
        )
    )
    shown = CliRunner().invoke(cli, ["runs", "show", "rnosuchrun"])
    assert shown.exit_code == 0, shown.output
    assert re.search(r"^status +LOST$", shown.output, re.M)
    assert "does not know Ray job rnosuchrun-1" in shown.output


def test_a_detached_run_whose_cluster_dies_is_lost_not_running(monkeypatch, tmp_path):
    store = str(tmp_path / "runs")
    cluster = LocalRayCluster(
        head=NodeSpec(name="head", head=True, num_cpus=1),
        dashboard=True,
        env={"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    with cluster:
        _use(cluster, monkeypatch, store)
        context = flyray.with_runcontext(mode="cluster", detach=True, on_log=lambda _: None)
        handle = context.run(load_task(TASKS, "sleep_long"))
        deadline = time.monotonic() + 120
        while "sleeping" not in RunStore(store).read_log(handle.run_id):
            assert handle.phase is RunStatus.RUNNING
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.5)
        token = cluster.token_path.read_text()  # its file goes with the cluster
    assert cluster.state == "stopped"
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
    monkeypatch.setenv("RAY_AUTH_TOKEN", token)

    runner = CliRunner()
    listed = runner.invoke(cli, ["runs", "list", "--refresh"])
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.output.splitlines() if handle.run_id in line]
    assert len(rows) == 1, listed.output
    (row,) = rows
    assert "LOST" in row.split()
    record = RunStore(store).load_record(handle.run_id)
    assert record.status is RunStatus.LOST
    assert f"no Ray cluster answered at {cluster.dashboard_url} (connection refused)" in (
        record.message
    )
    shown = runner.invoke(cli, ["runs", "show", handle.run_id])
    assert "its cluster could not be asked since" in shown.output
    with pytest.raises(flyray.errors.RayClusterError, match=f"run {handle.run_id} is LOST"):
        handle.outputs()
