"""Standby drivers: a warm cluster's next job driver started ahead, and handed the next run.

Most tests share one one-node warm cluster ('standby'); each waits until the cluster's standby
driver is ready before its run, so the run is handed to it.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import flyray
from flyray.errors import SubmissionError, TaskError, TaskTimeoutError
from flyray.executors.jobs.client import ray_jobs_client
from flyray.executors.localcluster.warm.registry import Registry, WarmCluster
from flyray.executors.localcluster.warm.standby import (
    Standby,
    claim,
    folder_of,
    hand_over,
    keep_one_ready,
    submit_standby,
    unclaimed,
)
from flyray.store.record import RunStatus
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task
from tests.procs import pids_mentioning, wait_until_gone

ROOT = Path(__file__).parents[3]
TASKS = str(Path(__file__).with_name("standby_tasks.py"))
FLYRAY = str(Path(sys.executable).parent / "flyray")


def wait_for(condition, timeout=60.0):
    """Poll ``condition`` until it gives something true; that value (None at the deadline)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    return value


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("standby")


@pytest.fixture(scope="module")
def cluster(home) -> WarmCluster:
    """The 'standby' environment's cluster, warm (`flyray cluster up`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYRAY_", "RAY_"))}
    env.update(FLYRAY_CLUSTERS_DIR=str(home / "clusters"), FLYRAY_RUN_STORE=str(home / "runs"))
    command = [FLYRAY, "cluster", "up", TASKS, "where"]
    started = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    assert "standby driver for the next run: job flyray-standby-" in started.stderr
    entry = Registry(home / "clusters").get("standby")
    yield entry
    down = [FLYRAY, "cluster", "down", "--all"]
    subprocess.run(down, cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert wait_until_gone(entry.temp_dir) == []


def ready_standby(cluster: WarmCluster) -> Standby:
    """The cluster's standby, once its driver waits for a run."""
    ready = wait_for(lambda: [s for s in unclaimed(cluster.temp_dir) if s.socket.exists()])
    assert ready, f"no standby driver got ready in {folder_of(cluster.temp_dir)}"
    return ready[0]


def run_task(home, name, *args, file=TASKS):
    """Run a task of ``file`` on local-cluster: (its run handle, progress messages)."""
    progress = []
    context = flyray.with_runcontext(
        mode="local-cluster",
        run_store=str(home / "runs"),
        clusters_dir=str(home / "clusters"),
        on_log=lambda _: None,
        on_progress=progress.append,
    )
    return context.run(load_task(file, name), *args), progress


def store(home) -> RunStore:
    return RunStore(str(home / "runs"))


def only_a_cold_standby(cluster: WarmCluster) -> Standby:
    """Make the cluster's one standby a cold one (submitted without a code bundle), ready."""
    jobs = ray_jobs_client(cluster.dashboard_url, cluster.auth_headers())
    shared = cluster_env(cluster)
    while (taken := claim(cluster.temp_dir, shared)) is not None:  # every waiting standby
        jobs.stop_job(taken.submission_id)
    submit_standby(jobs, cluster.temp_dir, shared)
    return ready_standby(cluster)


def cluster_env(cluster: WarmCluster) -> dict:
    """The runtime env of every run on the cluster, but the code bundle."""
    return cluster.key.get("runtimeEnv") or {}


def working_dir_of(home, run_id) -> str:
    manifest = yaml.safe_load(store(home).read_manifest(run_id))
    return yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])["working_dir"]


@pytest.mark.slow
def test_a_run_is_handed_to_a_standby_driver_started_without_its_code(home, cluster):
    standby = only_a_cold_standby(cluster)
    assert standby.working_dir is None
    run, progress = run_task(home, "where")
    result, run_id = run.result(), run.name
    (attempt,) = store(home).load_record(run_id).attempts
    assert attempt.submission_id == standby.submission_id
    assert attempt.status is RunStatus.SUCCEEDED
    assert f"job {run_id}-1 runs as standby job {standby.submission_id}" in progress
    # The job has the run's runtime env: its code bundle and env vars, on driver and workers.
    assert result["working_dir"] == working_dir_of(home, run_id)
    assert result["worker"]["answer"] == 42
    assert result["driver_env"] == result["worker"]["env"] == "on"
    assert Path(result["cwd"]).parent == folder_of(cluster.temp_dir)
    assert not Path(result["cwd"]).exists()  # the unpacked bundle goes with the run
    log = store(home).read_log(run_id)
    assert f"this standby driver runs attempt {run_id}-1: python -m flyray.entrypoint" in log
    assert "the task prints this" in log


@pytest.mark.slow
def test_the_next_run_of_the_same_code_finds_ray_and_its_workers_up(home, cluster):
    first, _ = run_task(home, "where")
    standby = ready_standby(cluster)  # left by that run, with its code bundle
    assert standby.working_dir == working_dir_of(home, first.name)
    before = {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}
    run, _ = run_task(home, "where")
    result = run.result()
    (attempt,) = store(home).load_record(run.name).attempts
    assert attempt.submission_id == standby.submission_id
    assert result["working_dir"] == standby.working_dir and result["worker"]["answer"] == 42
    assert result["driver_env"] == result["worker"]["env"] == "on"
    assert result["worker"]["pid"] in before  # a worker that was up before the run


OTHER_CODE = """
import os
from pathlib import Path

import ray

import flyray
from flyray import Resources
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig

env = flyray.TaskEnvironment(
    name="standby",
    plugin_config=RayJobConfig(head_node_config=HeadNodeConfig(requests=Resources(cpu=1))),
    env_vars={"STANDBY_TEST": "on"},
)


@env.task
def sees_its_code() -> dict:
    @ray.remote
    def on_a_worker() -> bool:
        return Path("only_in_this_bundle.txt").is_file()

    return {
        "working_dir": ray.get_runtime_context().runtime_env["working_dir"],
        "driver": Path("only_in_this_bundle.txt").is_file(),
        "worker": ray.get(on_a_worker.remote()),
    }
"""


@pytest.mark.slow
def test_a_run_of_other_code_gets_the_standby_connected_anew_with_its_bundle(
    home, cluster, tmp_path
):
    run_task(home, "where")
    standby = ready_standby(cluster)  # connected, with the code bundle of standby_tasks.py
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    (project / "only_in_this_bundle.txt").write_text("yes")
    (project / "other_code.py").write_text(OTHER_CODE)
    run, _ = run_task(home, "sees_its_code", file=str(project / "other_code.py"))
    result = run.result()
    (attempt,) = store(home).load_record(run.name).attempts
    assert attempt.submission_id == standby.submission_id
    assert result["working_dir"] == working_dir_of(home, run.name) != standby.working_dir
    assert result == {**result, "driver": True, "worker": True}


@pytest.mark.slow
def test_a_failing_task_on_a_standby_keeps_its_error(home, cluster):
    standby = ready_standby(cluster)
    with pytest.raises(TaskError) as failed:
        run_task(home, "fails")
    assert failed.value.code == "ValueError"
    assert "ValueError: the task failed on purpose" in failed.value.remote_traceback
    record = store(home).load_record(failed.value.run_id)
    assert record.status is RunStatus.FAILED
    (attempt,) = record.attempts
    assert attempt.submission_id == standby.submission_id and attempt.error_kind == "user"


@pytest.mark.slow
def test_a_retry_after_a_standby_attempt_is_submitted_as_before(home, cluster, tmp_path):
    standby = ready_standby(cluster)  # the only one: the next is submitted after the run
    run, _ = run_task(home, "fails_once", str(tmp_path / "flag"))
    assert run.result() == "second attempt"
    first, second = store(home).load_record(run.name).attempts
    assert first.submission_id == standby.submission_id and first.status is RunStatus.FAILED
    assert second.submission_id == f"{run.name}-2" and second.status is RunStatus.SUCCEEDED


@pytest.mark.slow
def test_the_deadline_stops_a_standby_job(home, cluster):
    standby = ready_standby(cluster)
    with pytest.raises(TaskTimeoutError):
        run_task(home, "sleeps")
    jobs = ray_jobs_client(cluster.dashboard_url, cluster.auth_headers())
    status = wait_for(lambda: (s := jobs.get_job_status(standby.submission_id)).is_terminal() and s)
    assert status is not None and status.value == "STOPPED"


@pytest.mark.slow
def test_a_standby_that_cannot_take_the_run_is_passed_over(home, cluster):
    standby = ready_standby(cluster)
    jobs = ray_jobs_client(cluster.dashboard_url, cluster.auth_headers())
    jobs.stop_job(standby.submission_id)
    assert wait_for(lambda: jobs.get_job_status(standby.submission_id).is_terminal())
    run, progress = run_task(home, "where")
    assert run.result()["worker"]["answer"] == 42
    (attempt,) = store(home).load_record(run.name).attempts
    assert attempt.submission_id == f"{run.name}-1"
    assert any(f"standby job {standby.submission_id} not used (" in p for p in progress)


@pytest.mark.slow
def test_standby_drivers_stop_with_their_cluster(home, cluster):
    standby = ready_standby(cluster)
    assert pids_mentioning(str(standby.socket))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYRAY_", "RAY_"))}
    env.update(FLYRAY_CLUSTERS_DIR=str(home / "clusters"))
    subprocess.run([FLYRAY, "cluster", "down", "standby"], env=env, check=True, timeout=120)
    assert wait_until_gone(str(standby.socket)) == []


class Jobs:
    """The Jobs API calls a standby's submitter and a hand-over make, recorded."""

    def __init__(self, fail: bool = False) -> None:
        self.submitted, self.stopped, self.fail = [], [], fail

    def submit_job(self, *, entrypoint, runtime_env, submission_id):
        if self.fail:
            raise SubmissionError("the Ray Jobs API at http://x could not submit job")
        self.submitted.append({"entrypoint": entrypoint, "runtime_env": runtime_env})
        return submission_id

    def stop_job(self, submission_id):
        self.stopped.append(submission_id)
        return True


def test_a_standby_is_claimed_once_and_only_for_its_runtime_env(tmp_path):
    jobs, env = Jobs(), {"env_vars": {"A": "1"}}
    standby = submit_standby(jobs, str(tmp_path), env)
    (submitted,) = jobs.submitted
    assert submitted["runtime_env"] == env
    assert submitted["entrypoint"].startswith(
        "python -m flyray.executors.localcluster.warm.standby_driver --socket "
    )
    assert oct(folder_of(tmp_path).stat().st_mode & 0o777) == "0o700"
    assert claim(str(tmp_path), {"env_vars": {"A": "2"}}) is None
    assert claim(str(tmp_path), {**env, "working_dir": "file:///b.zip"}) == standby
    assert claim(str(tmp_path), env) is None and unclaimed(str(tmp_path)) == []


def test_the_standby_with_the_runs_code_is_claimed_first(tmp_path):
    jobs, env = Jobs(), {"env_vars": {"A": "1"}}
    other = submit_standby(jobs, str(tmp_path), {**env, "working_dir": "file:///a.zip"})
    same = submit_standby(jobs, str(tmp_path), {**env, "working_dir": "file:///b.zip"})
    assert claim(str(tmp_path), {**env, "working_dir": "file:///b.zip"}) == same
    assert claim(str(tmp_path), {**env, "working_dir": "file:///b.zip"}) == other


def test_one_standby_is_kept_ready_and_a_failed_submission_leaves_none(tmp_path):
    jobs, env, said = Jobs(), {}, []
    keep_one_ready(jobs, str(tmp_path), env, said.append)
    keep_one_ready(jobs, str(tmp_path), env, said.append)  # one waits already
    assert len(jobs.submitted) == 1 and len(unclaimed(str(tmp_path))) == 1
    claim(str(tmp_path), env)
    keep_one_ready(Jobs(fail=True), str(tmp_path), env, said.append)
    assert unclaimed(str(tmp_path)) == [] and list(folder_of(tmp_path).glob("*.json*")) == []
    assert said[-1].startswith("no standby driver for the next run (the Ray Jobs API at")


def test_a_standby_driver_refuses_anything_but_flyrays_entrypoint(tmp_path):
    standby = Standby("flyray-standby-test", {}, tmp_path)
    module = "flyray.executors.localcluster.warm.standby_driver"
    argv = [sys.executable, "-m", module, "--socket", str(standby.socket)]
    driver = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    assert wait_for(standby.socket.exists), "the driver did not listen"
    jobs = Jobs()
    message = {"attempt": "r1-1", "argv": ["sh", "-c", "echo hi"], "working_dir": "file:///x"}
    why = hand_over(standby, jobs, message)
    assert why == (
        "its driver refused the run: argv must run `python -m flyray.entrypoint`, "
        "not ['sh', '-c', 'echo hi']"
    )
    assert jobs.stopped == ["flyray-standby-test"]  # claimed, so nobody else would use it
    assert driver.wait(timeout=30) == 1
    assert "standby driver refused a run" in driver.stderr.read()
    assert not standby.socket.exists()


class BuildingJobs(Jobs):
    """A standby job that stays PENDING (Ray building its env) for ``pending`` status calls."""

    def __init__(self, pending: int) -> None:
        super().__init__()
        self.pending, self.calls = pending, 0

    def get_job_status(self, submission_id):
        from ray.job_submission import JobStatus

        self.calls += 1
        return JobStatus.PENDING if self.calls <= self.pending else JobStatus.FAILED


def test_a_standby_building_its_runtime_env_is_waited_for_and_said(tmp_path, monkeypatch):
    from flyray.executors.localcluster.warm import standby as module

    monkeypatch.setattr(module, "READY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(module, "STATUS_POLL_S", 0.05)
    monkeypatch.setattr(module, "BUILDING_EVERY_S", 0.1)
    standby = Standby("flyray-standby-pip", {"pip": ["pyjokes"]}, tmp_path)
    jobs, said = BuildingJobs(pending=12), []  # PENDING for ~0.6 s: longer than the timeout
    message = {"attempt": "r1-1", "argv": ["python"], "working_dir": "file:///x"}
    why = hand_over(standby, jobs, message, said.append)
    assert why == "its job ended FAILED"  # not "not ready after 0.2 s": the build did not count
    assert said and said[0].startswith(
        "standby job flyray-standby-pip PENDING: Ray is building its runtime env (pip: pyjokes)"
    )
