"""Local Ray clusters on this machine: start, authenticate, run work, stop without leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flyray.errors import ConfigError, NodeStartError, SubmissionError
from flyray.executors.localcluster import raystart
from flyray.executors.localcluster.cluster import START_ATTEMPTS, LocalRayCluster
from flyray.executors.localcluster.raystart import NodeSpec
from tests.executors.localcluster.flaky_ray import TIMED_OUT, flaky_ray, left_behind
from tests.procs import session_members

# -- without Ray ---------------------------------------------------------------------------


def test_cluster_rejects_a_root_too_long_for_unix_sockets() -> None:
    with pytest.raises(ConfigError, match="root"):
        LocalRayCluster(NodeSpec(name="head", head=True), root=Path("/tmp") / ("x" * 60))


# -- with the session cluster ---------------------------------------------------------------


def _client_env(cluster: LocalRayCluster) -> dict[str, str]:
    """This process's environment, pointed at ``cluster`` with its auth variables."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN", "RAY_ADDRESS")}
    return {**env, **cluster.auth_env()}


def _run_python(code: str, env: dict[str, str], timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter; its stdout, or a failure showing its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_session_cluster_has_head_and_worker_alive(ray_cluster: LocalRayCluster) -> None:
    assert ray_cluster.state == "running"
    assert ray_cluster.alive_nodes() == 2
    assert len(ray_cluster.pids) == 2
    assert ray_cluster.gcs_address.startswith("127.0.0.1:")
    assert ray_cluster.client_address.startswith("ray://127.0.0.1:")
    assert set(ray_cluster.auth_env()) == {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"}
    assert (ray_cluster.log_dir / "worker-0.out").is_file()


def test_ray_client_runs_a_task_on_the_worker_resource(ray_cluster: LocalRayCluster) -> None:
    code = f"""
import ray
ray.init({ray_cluster.client_address!r}, log_to_driver=False)

@ray.remote(resources={{"workers": 1}}, num_cpus=0)
def where():
    return ray.get_runtime_context().get_node_id()

head = [n["NodeID"] for n in ray.nodes() if n["Alive"] and "workers" not in n["Resources"]]
node = ray.get(where.remote())
print("RESULT", node != head[0])
ray.shutdown()
"""
    assert "RESULT True" in _run_python(code, _client_env(ray_cluster))


def test_jobs_api_with_auth_env(ray_cluster: LocalRayCluster) -> None:
    code = f"""
import time
from ray.job_submission import JobStatus, JobSubmissionClient
client = JobSubmissionClient({ray_cluster.dashboard_url!r})
job = client.submit_job(entrypoint='python -c "print(42)"')
deadline = time.monotonic() + 60
while not client.get_job_status(job).is_terminal() and time.monotonic() < deadline:
    time.sleep(0.2)
print("STATUS", client.get_job_status(job))
print("LOGS", client.get_job_logs(job).splitlines())
"""
    out = _run_python(code, _client_env(ray_cluster))
    assert "STATUS SUCCEEDED" in out
    assert "'42'" in out


def test_jobs_api_refuses_requests_without_the_token(ray_cluster: LocalRayCluster) -> None:
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    with pytest.raises(AuthenticationError):
        JobSubmissionClient(ray_cluster.dashboard_url).list_jobs()
    authed = JobSubmissionClient(ray_cluster.dashboard_url, headers=ray_cluster.auth_headers())
    assert isinstance(authed.list_jobs(), list)


# -- clusters of their own ------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, session id) of a process, or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[3])


def _processes_of(leaders: list[int]) -> set[int]:
    """Every process in the leaders' sessions, plus every descendant of the leaders."""
    stats = {int(p): _proc_stat(int(p)) for p in os.listdir("/proc") if p.isdigit()}
    stats = {pid: st for pid, st in stats.items() if st is not None}
    found = {pid for pid, st in stats.items() if st[2] in leaders} | set(leaders)
    grew = True
    while grew:
        children = {pid for pid, st in stats.items() if st[1] in found} - found
        found |= children
        grew = bool(children)
    return found


def _running(pids: set[int]) -> set[int]:
    """The pids that still run (zombies waiting to be reaped do not count)."""
    return {pid for pid in pids if (st := _proc_stat(pid)) is not None and st[0] not in "ZX"}


def test_stop_leaves_no_process_behind() -> None:
    cluster = LocalRayCluster(
        NodeSpec(name="head", head=True, num_cpus=1), [NodeSpec(name="w", num_cpus=1)]
    )
    with cluster:
        assert cluster.alive_nodes() == 2
        temp_dir = cluster.temp_dir
        processes = _processes_of(cluster.pids)
        assert len(processes) > 10  # GCS, raylets, agents, dashboard, workers...
    assert cluster.state == "stopped"
    deadline = time.monotonic() + 10
    while _running(processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(processes)
    assert not temp_dir.exists()
    cluster.stop()  # idempotent


def test_a_failing_worker_names_itself_and_its_log() -> None:
    retries: list[str] = []
    cluster = LocalRayCluster(
        NodeSpec(name="head", head=True, num_cpus=1),
        [NodeSpec(name="bad-worker", params={"no-such-option": "1"})],
        dashboard=False,
        client_server=False,
        on_retry=retries.append,
    )
    with pytest.raises(NodeStartError) as caught:
        cluster.start()
    try:
        log_file = cluster.log_dir / "bad-worker.err"
        message = str(caught.value)
        assert "'bad-worker'" in message
        assert str(log_file) in message
        assert "no-such-option" in log_file.read_text()
        assert isinstance(caught.value, SubmissionError)
        assert cluster.state == "stopped"
        assert not _running(set(cluster.pids))
        # a usage error is not transient: not retried
        assert retries == [] and not list(cluster.log_dir.glob("*.attempt*"))
    finally:
        cluster.stop()
    assert not cluster.temp_dir.exists()


def test_a_node_start_that_timed_out_is_cleaned_up_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head's first start and the worker's first start time out; the cluster comes up."""
    fake = tmp_path / "flaky"
    monkeypatch.setattr(raystart, "_ray_executable", lambda: flaky_ray(fake, head=1, worker=1))
    retries: list[str] = []
    cluster = LocalRayCluster(
        NodeSpec(name="head", head=True, num_cpus=1),
        [NodeSpec(name="w", num_cpus=1)],
        dashboard=False,
        client_server=False,
        on_retry=retries.append,
    )
    with cluster:
        assert cluster.alive_nodes() == 2
        logs = cluster.log_dir
        assert [line.split(" failed")[0] for line in retries] == ["Ray node 'head'", "Ray node 'w'"]
        assert all("exited with code 1: " + TIMED_OUT in line for line in retries)
        assert "start 2/3" in retries[0] and str(logs / "head.attempt1.err") in retries[0]
        assert TIMED_OUT in (logs / "w.attempt1.err").read_text()  # the failed start's log
        assert "Ray runtime started" in (logs / "w.out").read_text()  # the retry's log
        # what the failed starts left behind was stopped before the retry
        assert len(left_behind(fake)) == 2 and not _running(set(left_behind(fake)))
        sessions = set(cluster.pids)
    assert not session_members(sessions)


def test_a_node_that_keeps_timing_out_fails_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "flaky"
    monkeypatch.setattr(raystart, "_ray_executable", lambda: flaky_ray(fake, worker=10))
    cluster = LocalRayCluster(
        NodeSpec(name="head", head=True, num_cpus=1),
        [NodeSpec(name="w", num_cpus=1)],
        dashboard=False,
        client_server=False,
    )
    with pytest.raises(NodeStartError) as caught:
        cluster.start()
    try:
        message = str(caught.value)
        assert message.startswith(f"Ray node 'w' failed to start (start {START_ATTEMPTS} of 3;")
        assert str(cluster.log_dir / "w.attempt2.err") in message and TIMED_OUT in message
        assert len(left_behind(fake)) == START_ATTEMPTS and not _running(set(left_behind(fake)))
    finally:
        cluster.stop()
