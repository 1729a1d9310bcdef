"""local-cluster mode end to end: real Ray nodes for the declared topology, a real Ray job."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import flyray
from flyray.config.settings import Settings
from flyray.errors import ClusterLostError
from flyray.executors.localcluster import raystart
from flyray.executors.localcluster.executor import LocalClusterExecutor
from flyray.executors.localcluster.warm.registry import KEPT, Registry
from flyray.store.record import RunStatus
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task
from tests.executors.localcluster.flaky_ray import TIMED_OUT, flaky_ray, left_behind
from tests.procs import (
    node_sessions,
    pids_mentioning,
    session_members,
    wait_until,
    wait_until_gone,
    wait_until_sessions_end,
)

pytestmark = pytest.mark.slow

TASKS = str(Path(__file__).parent.parent / "lc_tasks.py")
ROOT = Path(__file__).parents[3]


@pytest.fixture
def store_dir(tmp_path):
    return str(tmp_path / "runs")


def run_on_local_cluster(store_dir, task_name, *args, on_log=None, on_progress=None, **kwargs):
    task = load_task(TASKS, task_name)
    context = flyray.with_runcontext(
        mode="local-cluster",
        run_store=store_dir,
        on_log=on_log or (lambda _: None),
        on_progress=on_progress,
    )
    return context.run(task, *args, **kwargs)


def only_record(store_dir):
    (record,) = RunStore(store_dir).list_records()
    return record


def assert_cluster_gone(record, timeout=15.0):
    """No process of the run's cluster is left (by temp dir, by node session), nor its dir."""
    assert record.cluster["temp_dir"] and record.cluster["nodes"]
    assert wait_until_gone(record.cluster["temp_dir"], timeout) == []
    assert wait_until_sessions_end(node_sessions(record.cluster["nodes"]), timeout) == []
    assert wait_until_gone(record.run_id, timeout) == []  # the job driver: a session of its own
    assert not Path(record.cluster["temp_dir"]).exists()


def flyray_run(store_dir, task_name):
    """`flyray run --mode local-cluster TASKS task_name` started, its stderr piped."""
    env = {**os.environ, "FLYRAY_RUN_STORE": store_dir}
    cmd = [str(Path(sys.executable).parent / "flyray"), "run", "--mode", "local-cluster", TASKS]
    return subprocess.Popen(
        [*cmd, task_name],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def read_until(stream, text):
    """The lines of ``stream`` up to the one holding ``text`` (all of it if none does)."""
    seen = []
    for line in stream:
        seen.append(line)
        if text in line:
            break
    return "".join(seen)


def test_declared_topology_runs_the_seed_work(store_dir):
    handle = run_on_local_cluster(store_dir, "describe_cluster", n=10)
    assert handle.mode == "local-cluster" and handle.status is RunStatus.SUCCEEDED
    assert handle.result() == {
        "alive": 3,
        "cpus": [1.0, 2.0, 2.0],
        "memory_gib": [2.0, 4.0, 4.0],
        "group_nodes": 2,
        "pinned_on_group": True,
        "sum": 285,
    }
    record = only_record(store_dir)
    assert record.status is RunStatus.SUCCEEDED and len(record.attempts) == 1
    store = RunStore(store_dir)
    assert "Running entrypoint for job" in store.read_log(record.run_id)
    assert "kind: RayJob" in store.read_manifest(record.run_id)
    assert_cluster_gone(record)


def test_failing_task_returns_the_remote_traceback(store_dir):
    with pytest.raises(flyray.TaskError) as info:
        run_on_local_cluster(store_dir, "fail_remotely", code=7)
    error = info.value
    assert "RuntimeError: failed on purpose with code 7" in str(error)
    assert 'raise RuntimeError(f"failed on purpose with code {code}")' in error.remote_traceback
    record = only_record(store_dir)
    assert error.run_id == record.run_id and record.status is RunStatus.FAILED
    store = RunStore(store_dir)
    assert store.read_error(record.run_id).type == "RuntimeError"
    assert "failed on purpose with code 7" in store.read_log(record.run_id)
    assert_cluster_gone(record)


def test_lost_worker_is_survived(store_dir):
    result = run_on_local_cluster(store_dir, "survive_a_lost_worker", n=12).result()
    assert result == {"sum": sum(i * i for i in range(12)), "alive_after": 2}
    assert_cluster_gone(only_record(store_dir))


def test_timeout_stops_the_job_and_the_cluster(store_dir):
    with pytest.raises(flyray.TaskTimeoutError, match="deadline of 5 s"):
        run_on_local_cluster(store_dir, "sleep_too_long")
    record = only_record(store_dir)
    assert record.status is RunStatus.FAILED and "deadline" in record.attempts[0].message
    assert_cluster_gone(record)


def test_ctrl_c_tears_everything_down(store_dir):
    proc = flyray_run(store_dir, "sleep_until_interrupted")
    seen = read_until(proc.stderr, "sleeping until the caller interrupts")  # as a user would
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, seen + rest
    assert "Interrupted" in rest
    record = only_record(store_dir)
    assert record.status is RunStatus.STOPPED and record.message == "interrupted (Ctrl-C)"
    assert_cluster_gone(record)


def test_existing_cluster_address_is_refused(store_dir, tmp_path):
    path = tmp_path / "existing.py"
    path.write_text(
        "import flyray\nfrom flyray.plugins.ray import RayJobConfig\n"
        "env = flyray.TaskEnvironment('ex', plugin_config=RayJobConfig(address='ray://h:10001'))\n"
        "@env.task\ndef t() -> None:\n    pass\n"
    )
    with pytest.raises(
        flyray.ManifestError, match="uses the existing Ray cluster at 'ray://h:10001'"
    ):
        flyray.with_runcontext(mode="local-cluster", run_store=store_dir).run(
            load_task(str(path), "t")
        )


def test_ttl_keeps_the_cluster_then_removes_it(store_dir, clusters_dir):
    assert run_on_local_cluster(store_dir, "quick").result() == 9
    record = only_record(store_dir)
    assert record.cluster["kept_until"] and record.cluster["reaper_pid"]
    assert pids_mentioning(record.cluster["temp_dir"]), "the cluster should outlive the run"
    registry = Registry(clusters_dir)
    kept = registry.get(record.cluster["kept_as"])  # `flyray cluster list` shows it meanwhile
    assert kept is not None and kept.state == KEPT and kept.idle_timeout == 4
    assert kept.owner.pid == int(record.cluster["reaper_pid"])
    assert kept.temp_dir == record.cluster["temp_dir"]
    assert_cluster_gone(record)  # the reaper stops it after ttl_seconds_after_finished
    assert wait_until(lambda: registry.get(kept.name) is None), "the reaper left its entry"


def test_retries_resubmit_and_record_every_attempt(store_dir, tmp_path):
    marker = str(tmp_path / "attempted")
    assert run_on_local_cluster(store_dir, "fail_once", marker=marker).result() == "second attempt"
    record = only_record(store_dir)
    assert [a.status for a in record.attempts] == [RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert "first attempt fails" in record.attempts[0].message
    assert record.status is RunStatus.SUCCEEDED
    assert_cluster_gone(record)


def test_cli_failure_prints_the_remote_traceback_and_run_id(store_dir):
    cmd = [str(Path(sys.executable).parent / "flyray"), "run", "--mode", "local-cluster"]
    result = subprocess.run(
        [*cmd, "--run-store", store_dir, TASKS, "fail_remotely", "--code", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    record = only_record(store_dir)
    assert result.returncode == 1
    assert 'raise RuntimeError(f"failed on purpose with code {code}")' in result.stderr
    assert f"run {record.run_id}" in result.stderr
    assert_cluster_gone(record)


# -- faults ----------------------------------------------------------------------------------


def test_a_worker_start_that_timed_out_is_retried_and_the_run_succeeds(
    store_dir, tmp_path, monkeypatch
):
    fake = tmp_path / "flaky"
    monkeypatch.setattr(raystart, "_ray_executable", lambda: flaky_ray(fake, worker=1))
    progress = []
    run = run_on_local_cluster(store_dir, "squares_on_the_worker", n=5, on_progress=progress.append)
    assert run.result() == 30
    (retry,) = [line for line in progress if "retrying" in line]
    assert retry.startswith("Ray node 'w-0' failed to start (`ray start` exited with code 1: ")
    assert TIMED_OUT in retry and "start 2/3" in retry and "w-0.attempt1.err" in retry
    assert progress.index(retry) < progress.index("nodes up 2/2")
    assert len(left_behind(fake)) == 1 and not session_members(left_behind(fake))
    assert_cluster_gone(only_record(store_dir))


def test_a_killed_head_fails_the_run_with_the_cause(store_dir):
    """SIGKILL to the head's process group mid-job: the run says so, and nothing is left."""

    def kill_the_head(text):
        if "sleeping until the caller interrupts" in text:
            head = node_sessions(only_record(store_dir).cluster["nodes"])[0]
            os.killpg(head, signal.SIGKILL)

    with pytest.raises(ClusterLostError) as caught:
        run_on_local_cluster(store_dir, "sleep_until_interrupted", on_log=kill_the_head)
    record = only_record(store_dir)
    message = str(caught.value)
    assert message.startswith(f"run {record.run_id} failed: its local Ray cluster lost 'head' ")
    assert "(killed by SIGKILL)" in message and "its head node died" in message
    assert record.status is RunStatus.FAILED and record.message == message
    assert_cluster_gone(record)


def test_a_killed_cli_leaves_its_cluster_to_the_guard(store_dir, monkeypatch):
    """`kill -9` of `flyray run`: the cluster's guard stops it; the run is then FAILED."""
    proc = flyray_run(store_dir, "sleep_until_interrupted")
    seen = read_until(proc.stderr, "sleeping until the caller interrupts")
    record = only_record(store_dir)
    assert session_members(node_sessions(record.cluster["nodes"])), seen
    proc.kill()
    proc.wait(timeout=10)
    proc.stderr.close()
    # the guard stops the nodes at once: SIGTERM, SIGKILL 5 s later, gone within seconds more
    assert_cluster_gone(record, timeout=30.0)
    monkeypatch.setenv("FLYRAY_RUN_STORE", store_dir)
    executor = LocalClusterExecutor(Settings.load())
    assert executor.status(record.run_id) is RunStatus.FAILED
    after = only_record(store_dir)
    assert after.status is RunStatus.FAILED and after.ended_at
    assert f"the flyray process that ran it (pid {proc.pid}) died" in after.message
