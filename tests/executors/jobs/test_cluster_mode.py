"""cluster mode against a real running cluster (the session fixture), through its Jobs API."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import flyray
import flyray.errors
from flyray.cli.main import cli
from flyray.executors.jobs.client import connect
from flyray.executors.localcluster.raystart import free_port
from flyray.store.record import RunStatus
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task

pytestmark = pytest.mark.slow

TASKS = str(Path(__file__).parent.parent / "lc_tasks.py")
ROOT = Path(__file__).parents[3]
FLYRAY = str(Path(sys.executable).parent / "flyray")


@pytest.fixture
def cluster_env(ray_cluster, monkeypatch, tmp_path):
    """The caller's environment for the session cluster: its token, its address, a run store."""
    for name, value in ray_cluster.auth_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FLYRAY_ADDRESS", ray_cluster.dashboard_url)
    store = str(tmp_path / "runs")
    monkeypatch.setenv("FLYRAY_RUN_STORE", store)
    return store


def run(task_name, *args, **options):
    context = flyray.with_runcontext(mode="cluster", on_log=lambda _: None, **options)
    return context.run(load_task(TASKS, task_name), *args)


def test_seed_work_on_an_existing_cluster(cluster_env):
    handle = run("sum_of_squares", 10)
    assert handle.result() == 285
    (record,) = RunStore(cluster_env).list_records()
    assert record.mode == "cluster" and record.status is RunStatus.SUCCEEDED
    assert "summing 10 squares" in RunStore(cluster_env).read_log(record.run_id)


def test_retries_make_three_attempts(cluster_env):
    with pytest.raises(flyray.TaskError, match="this task always fails"):
        run("always_fails")
    (record,) = RunStore(cluster_env).list_records()
    assert [a.status for a in record.attempts] == [RunStatus.FAILED] * 3
    assert len({a.submission_id for a in record.attempts}) == 3
    assert {a.error_kind for a in record.attempts} == {"user"}


def test_a_non_recoverable_error_ends_the_retries_after_the_backoff(cluster_env, tmp_path):
    progress, marker = [], tmp_path / "attempts"
    marker.mkdir()
    with pytest.raises(flyray.errors.RuntimeUserError, match="stop here") as info:
        run("gives_up", str(marker), on_progress=progress.append)
    assert info.value.code == "NonRecoverableError"
    (record,) = RunStore(cluster_env).list_records()
    assert len(record.attempts) == 3  # of 4 allowed: the third said not to retry
    assert sum("backing off 0.2 s" in line for line in progress) == 2
    assert any("NonRecoverableError: not retried" in line for line in progress)


def test_detach_then_show_logs_and_cancel(cluster_env, ray_cluster):
    handle = run("sleep_long", detach=True)
    assert handle.status is RunStatus.RUNNING
    runner = CliRunner()
    deadline = time.monotonic() + 120
    while "sleeping" not in (logs := runner.invoke(cli, ["logs", handle.run_id]).output):
        assert time.monotonic() < deadline, logs
        time.sleep(0.5)
    shown = runner.invoke(cli, ["runs", "show", handle.run_id])
    assert "RUNNING" in shown.output
    cancelled = runner.invoke(cli, ["cancel", handle.run_id])
    assert cancelled.exit_code == 0, cancelled.output
    record = RunStore(cluster_env).load_record(handle.run_id)
    assert record.status is RunStatus.STOPPED
    client = connect(ray_cluster.dashboard_url, skip_version_check=True)
    submission = record.attempts[-1].submission_id
    deadline = time.monotonic() + 60
    while client.get_job_status(submission).value != "STOPPED":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_cli_seed_example_on_a_cluster(cluster_env):
    result = subprocess.run(
        [FLYRAY, "run", "--mode", "cluster", "examples/seed.py", "my_ray_task", "--n", "10"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "285\n"


def test_unreachable_address(cluster_env):
    address = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(flyray.SubmissionError, match=f"no Ray cluster answered at {address}"):
        run("sum_of_squares", 1, address=address)


def test_ray_client_address_is_the_wrong_scheme(cluster_env, ray_cluster):
    with pytest.raises(flyray.ConfigError, match="ray:// addresses are for the Ray Client"):
        run("sum_of_squares", 1, address=ray_cluster.client_address)


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_missing_or_wrong_token(cluster_env, ray_cluster, monkeypatch, token):
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    if token:
        monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    state = "refused the token flyray sent" if token else "needs a token and flyray sent none"
    with pytest.raises(flyray.errors.ClusterAuthError, match=state) as info:
        run("sum_of_squares", 1)
    assert info.value.token_sent is bool(token) and ray_cluster.dashboard_url in str(info.value)
    assert token is None or token not in str(info.value)


def test_version_warning_and_skip(cluster_env):
    seen = []
    flyray.with_runcontext(mode="cluster", on_progress=seen.append, on_log=lambda _: None).run(
        load_task(TASKS, "sum_of_squares"), 2
    )
    assert any("warning: the Python version of the cluster" in line for line in seen)
    seen.clear()
    run_context = flyray.with_runcontext(
        mode="cluster", on_progress=seen.append, on_log=lambda _: None, skip_version_check=True
    )
    assert run_context.run(load_task(TASKS, "sum_of_squares"), 2).result() == 1
    assert not any(line.startswith("warning:") for line in seen)


def test_ctrl_c_stops_the_ray_job(cluster_env, ray_cluster):
    proc = subprocess.Popen(
        [FLYRAY, "run", "--mode", "cluster", TASKS, "sleep_long"],
        cwd=ROOT,
        env=dict(os.environ),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("sleeping"):
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, "".join(seen) + rest
    assert "stopped Ray job" in rest
    (record,) = RunStore(cluster_env).list_records()
    assert record.status is RunStatus.STOPPED
    client = connect(ray_cluster.dashboard_url, skip_version_check=True)
    deadline = time.monotonic() + 60
    while client.get_job_status(record.attempts[-1].submission_id).value != "STOPPED":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_flyte_keywords_name_the_run_and_set_env_vars_for_the_job(cluster_env):
    context = flyray.with_runcontext(
        mode="cluster", name="env-run-1", env_vars={"RUN_VAR": "from-run"}, on_log=lambda _: None
    )
    handle = context.run(load_task(TASKS, "read_env"), "RUN_VAR")
    assert handle.name == handle.run_id == "env-run-1"
    assert handle.outputs() == ("from-run", "from-run")  # the driver and a worker
    assert repr(handle.outputs()) == 'ActionOutputs(o0="from-run", o1="from-run")'
    assert handle.url == RunStore(cluster_env).uri("runs", "env-run-1")
    assert RunStore(cluster_env).load_record("env-run-1").status is RunStatus.SUCCEEDED
    with pytest.raises(flyray.ConfigError, match="name is the name of a run the run store"):
        context.run(load_task(TASKS, "read_env"), "RUN_VAR")
    assert RunStore(cluster_env).load_record("env-run-1").status is RunStatus.SUCCEEDED


def test_wait_follows_a_detached_run_to_its_outputs(cluster_env):
    handle = run("sum_of_squares", 10, detach=True)
    assert handle.wait() is None
    assert handle.done() and handle.phase is RunStatus.SUCCEEDED
    assert handle.outputs() == (285,) and handle.result() == 285
    assert RunStore(cluster_env).load_record(handle.name).status is RunStatus.SUCCEEDED


def test_a_detached_run_that_fails_raises_from_outputs_not_from_wait(cluster_env):
    handle = run("always_fails", detach=True)
    assert handle.wait() is None
    assert handle.phase is RunStatus.FAILED
    with pytest.raises(flyray.TaskError, match="ValueError: this task always fails"):
        handle.outputs()


def test_a_detached_run_has_no_outputs_until_it_ends(cluster_env):
    handle = run("sleep_long", detach=True)
    with pytest.raises(flyray.FlyrayError, match=f"run {handle.name} is RUNNING, so it has no"):
        handle.outputs()
    assert handle.result() is None and not handle.done()
    assert CliRunner().invoke(cli, ["cancel", handle.name]).exit_code == 0
    assert handle.phase is RunStatus.STOPPED
    with pytest.raises(flyray.TaskError, match=f"run {handle.name} was stopped"):
        handle.outputs()
