"""Ray's autoscaler on local clusters, end to end: 0 workers, 2 on demand, 0 after idling.

Each test runs the Flyte-style task of autoscale_tasks.py (head without CPUs; group with
replicas 0, min 0, max 2, idle timeout 5 s) and checks what the task saw, what the run's
progress said, and that every node the autoscaler started is gone afterwards, by its session.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import flyray
from flyray.executors.localcluster.autoscale.records import (
    FAILED,
    GroupCount,
    alive_node_ports,
    group_counts,
    read_records,
)
from flyray.executors.localcluster.autoscale.watch import watch_autoscaling
from flyray.executors.localcluster.from_manifest import new_cluster
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task
from tests.procs import node_sessions, wait_until, wait_until_gone, wait_until_sessions_end

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[3]
TASKS = str(Path(__file__).with_name("autoscale_tasks.py"))
FLYRAY = str(Path(sys.executable).parent / "flyray")
GROUP = "scalers"
PEAK = f"workers {GROUP}: 2/2 (min 0, max 2)"
EMPTY = f"workers {GROUP}: 0/0 (min 0, max 2)"


class Seen:
    """A progress callback that also notes every worker node of the cluster under a temp dir."""

    def __init__(self, temp_dir=None, store=None):
        self.temp_dir, self.store = temp_dir, store
        self.lines: list[str] = []
        self.nodes: dict[int, int] = {}  # pid: start of each worker's `ray start`

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        temp_dir = self.temp_dir or self._run_temp_dir()
        if temp_dir:
            self.nodes.update({r.pid: r.start for r in read_records(temp_dir) if r.pid})

    def _run_temp_dir(self):
        if self.store is None:
            return None
        records = RunStore(self.store).list_records()
        return records[0].cluster.get("temp_dir") if records else None

    def workers_lines(self) -> list[str]:
        return [line for line in self.lines if line.startswith(f"workers {GROUP}:")]


def assert_scaled_out_and_in(result, seen):
    assert result["at_start"] == 0
    assert result["peak"] == 2 and result["distinct_nodes"] == 2
    assert result["after"] == 0
    lines = seen.workers_lines()
    assert PEAK in lines, lines
    assert lines[-1] == EMPTY, lines
    assert len(seen.nodes) == 2


def run_task(home, seen, **options):
    context = flyray.with_runcontext(
        mode="local-cluster",
        run_store=str(home / "runs"),
        clusters_dir=str(home / "clusters"),
        on_log=lambda _: None,
        on_progress=seen,
        **options,
    )
    return context.run(load_task(TASKS, "scale_out_and_in")).result()


def flyray_cli(home, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYRAY_")}
    env.update(FLYRAY_CLUSTERS_DIR=str(home / "clusters"), FLYRAY_RUN_STORE=str(home / "runs"))
    result = subprocess.run(
        [FLYRAY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_transient_cluster_scales_out_on_demand_and_in_when_idle(tmp_path):
    seen = Seen(store=str(tmp_path / "runs"))
    result = run_task(tmp_path, seen, fresh=True)

    assert_scaled_out_and_in(result, seen)
    (record,) = RunStore(str(tmp_path / "runs")).list_records()
    assert wait_until_sessions_end(seen.nodes) == []
    assert wait_until_gone(record.cluster["temp_dir"]) == []
    assert not Path(record.cluster["temp_dir"]).exists()


def test_a_killed_cli_leaves_the_autoscaled_workers_to_the_guard(tmp_path):
    """`kill -9` of `flyray run`: its guard stops the head and the autoscaler's workers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYRAY_")}
    env.update(FLYRAY_RUN_STORE=str(tmp_path / "runs"), FLYRAY_CLUSTERS_DIR=str(tmp_path / "c"))
    cmd = [FLYRAY, "run", "--mode", "local-cluster", "--fresh", TASKS, "hold_two_workers"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "holding 2 workers" in line:
            break
    (record,) = RunStore(str(tmp_path / "runs")).list_records()
    temp_dir = record.cluster["temp_dir"]
    workers = {r.pid: r.start for r in read_records(temp_dir) if r.pid}
    assert len(workers) == 2, "".join(seen)
    proc.kill()
    proc.wait(timeout=10)
    proc.stderr.close()
    assert wait_until_sessions_end([*workers, *node_sessions(record.cluster["nodes"])], 30) == []
    assert wait_until_gone(temp_dir, 30) == []
    assert not Path(temp_dir).exists()


def test_a_warm_cluster_scales_out_and_in_and_lists_its_workers(tmp_path):
    name = flyray_cli(tmp_path, "cluster", "up", TASKS, "scale_out_and_in").strip()
    entry = json.loads((tmp_path / "clusters" / f"{name}.json").read_text())
    temp_dir = entry["temp_dir"]
    try:
        assert group_counts(temp_dir) == {GROUP: GroupCount(0, 0, 0, 2)}
        assert f"{GROUP} 0/0" in flyray_cli(tmp_path, "cluster", "list")

        seen = Seen(temp_dir=temp_dir)
        result = run_task(tmp_path, seen)

        assert any(line.startswith(f"on warm cluster {name!r}") for line in seen.lines)
        assert_scaled_out_and_in(result, seen)
        assert wait_until_sessions_end(seen.nodes) == []  # stopped by the autoscaler
        assert group_counts(temp_dir, alive_node_ports(temp_dir))[GROUP] == GroupCount(0, 0, 0, 2)
        assert f"{GROUP} 0/0" in flyray_cli(tmp_path, "cluster", "list")
    finally:
        flyray_cli(tmp_path, "cluster", "down", "--all")
    assert wait_until_gone(temp_dir) == []


BROKEN = {
    "spec": {
        "rayClusterSpec": {
            "enableInTreeAutoscaling": True,
            "autoscalerOptions": {"idleTimeoutSeconds": 5},
            "headGroupSpec": {
                "rayStartParams": {"num-cpus": "0"},
                "template": {"spec": {"containers": [{"name": "ray-head"}]}},
            },
            "workerGroupSpecs": [
                {
                    "groupName": GROUP,
                    "replicas": 0,
                    "minReplicas": 0,
                    "maxReplicas": 1,
                    # `ray start` refuses this (below Ray's minimum object store): every
                    # worker the autoscaler starts fails
                    "rayStartParams": {"num-cpus": "1", "object-store-memory": "1"},
                    "template": {"spec": {"containers": [{"name": "ray-worker"}]}},
                }
            ],
        }
    }
}

DRIVER = """
import ray
ray.init(address="{address}")
ray.get(ray.remote(num_cpus=1)(lambda: 1).remote())
"""


def test_a_worker_that_fails_to_start_is_reported_with_its_error():
    seen = Seen()
    cluster = new_cluster(BROKEN, seen)
    cluster.start()
    driver = None
    try:
        seen.temp_dir = cluster.temp_dir
        env = {**os.environ, **cluster.auth_env()}
        script = DRIVER.format(address=cluster.gcs_address)
        driver = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
        with watch_autoscaling(cluster.temp_dir, seen):
            assert wait_until(
                lambda: any(r.state == FAILED for r in read_records(cluster.temp_dir)),
                timeout=120,
            )
            assert wait_until(lambda: any("failed to start" in line for line in seen.lines), 10)
        failure = next(line for line in seen.lines if "failed to start" in line)
        assert failure.startswith(f"worker {GROUP}-a1 of group {GROUP} failed to start: ")
        assert "object store" in failure.lower() and "see " in failure
    finally:
        if driver is not None:
            driver.kill()
            driver.wait()
        cluster.stop()
    assert wait_until_sessions_end([*seen.nodes, *cluster.leaders()]) == []
    assert wait_until_gone(str(cluster.temp_dir)) == []


def test_the_first_workers_belong_to_the_autoscaler_and_stop_with_the_cluster():
    """min 1: the cluster starts one worker and Ray's autoscaler adopts it as its instance."""
    manifest = json.loads(json.dumps(BROKEN))
    group = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    group["rayStartParams"] = {"num-cpus": "1"}
    group["minReplicas"] = group["replicas"] = 1  # the cluster's own first worker
    group["maxReplicas"] = 2
    seen = Seen()
    cluster = new_cluster(manifest, seen)
    cluster.start()
    try:
        seen.temp_dir = cluster.temp_dir
        seen("started")
        assert group_counts(cluster.temp_dir)[GROUP] == GroupCount(1, 1, 1, 2)
        assert len(cluster.leaders()) == 1  # the head: the autoscaler owns the worker
        monitor_log = cluster.temp_dir / "session_latest" / "logs" / "monitor.log"
        adopted = f"allocated unmanaged cloud instance :{GROUP}-0"
        assert wait_until(lambda: adopted in _read(monitor_log), timeout=60)
    finally:
        cluster.stop()
    assert len(seen.nodes) == 1
    assert wait_until_sessions_end([*seen.nodes, *cluster.leaders()]) == []
    assert wait_until_gone(str(cluster.temp_dir)) == []


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
