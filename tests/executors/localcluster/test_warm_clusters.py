"""Warm clusters end to end: `flyray cluster up/list/down`, runs reusing them, their keepers.

One warm cluster of the seed's topology is shared by the tests that only use it, and stopped
by the last of them (`down`) before the one-node clusters of the other tests start: the
machine may have two cores.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

import flyray
from flyray.executors.localcluster.cluster import LocalRayCluster
from flyray.executors.localcluster.raystart import NodeSpec
from flyray.executors.localcluster.reaper import start_reaper
from flyray.executors.localcluster.warm.clusters import clean_up
from flyray.executors.localcluster.warm.registry import Process, Registry, WarmCluster
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task
from tests.procs import pids_mentioning, wait_until_gone

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[3]
SEED = str(ROOT / "examples" / "seed.py")
TASKS = str(Path(__file__).with_name("warm_tasks.py"))
FLYRAY = str(Path(sys.executable).parent / "flyray")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """This module's warm-cluster registry and run store."""
    return tmp_path_factory.mktemp("warm")


def registry(home) -> Registry:
    return Registry(home / "clusters")


def flyray_cli(home, *args, check=True) -> subprocess.CompletedProcess:
    """Run the flyray CLI with this module's registry and run store."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("FLYRAY_") and k != "RAY_ADDRESS"
    }
    env.update(FLYRAY_CLUSTERS_DIR=str(home / "clusters"), FLYRAY_RUN_STORE=str(home / "runs"))
    result = subprocess.run(
        [FLYRAY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def up(home, *args) -> WarmCluster:
    """`flyray cluster up ARGS`; the new cluster's registry entry."""
    name = flyray_cli(home, "cluster", "up", *args).stdout.strip()
    entry = registry(home).get(name)
    assert entry is not None and entry.state == "running"
    assert pids_mentioning(entry.temp_dir), "the cluster should be running"
    return entry


def run_task(home, name, *, fresh=False, **options):
    """Run a task of warm_tasks.py on local-cluster; (its result, the progress messages)."""
    progress = []
    context = flyray.with_runcontext(
        mode="local-cluster",
        run_store=str(home / "runs"),
        clusters_dir=str(home / "clusters"),
        fresh=fresh,
        on_log=lambda _: None,
        on_progress=progress.append,
        **options,
    )
    return context.run(load_task(TASKS, name)).result(), progress


def transient_temp_dir(home, run_id) -> str:
    return RunStore(str(home / "runs")).load_record(run_id).cluster["temp_dir"]


def wait_for(condition, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture(scope="module")
def seed_cluster(home):
    """The seed's cluster, warm, as `flyray cluster up examples/seed.py my_ray_task` starts it."""
    entry = up(home, SEED, "my_ray_task")
    assert entry.name == "ray-env" and entry.nodes == 3
    yield entry
    flyray_cli(home, "cluster", "down", "--all", check=False)
    assert wait_until_gone(entry.temp_dir) == []


@pytest.fixture(scope="module")
def small_cluster(home):
    """A one-node warm cluster, named after its environment ('small')."""
    entry = up(home, TASKS, "small_nodes")
    yield entry
    flyray_cli(home, "cluster", "down", "--all", check=False)
    assert wait_until_gone(entry.temp_dir) == []


def test_runs_reuse_the_warm_cluster_and_leave_it_running(home, seed_cluster):
    first, _ = run_task(home, "seed_nodes")
    used = registry(home).get("ray-env").last_used
    second, progress = run_task(home, "seed_nodes")
    assert second == first and len(first["nodes"]) == 3  # the very same Ray nodes
    assert any("on warm cluster 'ray-env' (3 nodes)" in line for line in progress)
    seed = flyray_cli(home, "run", "--mode", "local-cluster", SEED, "my_ray_task", "--n", "10")
    assert seed.stdout.strip() == "285" and "on warm cluster 'ray-env'" in seed.stderr
    entry = registry(home).get("ray-env")
    assert entry.state == "running" and entry.leases == {} and entry.last_used > used
    assert entry.temp_dir == seed_cluster.temp_dir and pids_mentioning(entry.temp_dir)


def test_list_and_up_again(home, seed_cluster):
    listing = flyray_cli(home, "cluster", "list").stdout
    assert "ray-env" in listing and "running" in listing and "my_ray_task" in listing
    again = flyray_cli(home, "cluster", "up", SEED, "ray_env")  # the environment's name
    assert again.stdout.strip() == "ray-env" and "was already up" in again.stderr
    assert registry(home).get("ray-env").owner == seed_cluster.owner


def test_a_different_cluster_runs_on_a_new_one_and_says_why(home, seed_cluster):
    result = flyray_cli(home, "run", "--mode", "local-cluster", TASKS, "one_worker_nodes")
    assert "workerGroupSpecs[0].replicas: 2 (warm cluster 'ray-env') != 1 (this run)" in (
        result.stderr
    )
    assert len(json.loads(result.stdout)["nodes"]) == 2
    run_id = result.stderr.rsplit("(run ", 1)[1].split(")")[0]
    assert wait_until_gone(transient_temp_dir(home, run_id)) == []
    assert registry(home).get("ray-env").state == "running"


def test_down_stops_every_process(home, seed_cluster):
    assert len(pids_mentioning(seed_cluster.temp_dir)) > 3  # the keeper and the nodes
    result = flyray_cli(home, "cluster", "down", "ray-env")
    assert "stopped warm cluster 'ray-env' (3 nodes)" in result.stderr
    assert wait_until_gone(seed_cluster.temp_dir, timeout=5) == []
    assert registry(home).get("ray-env") is None and not Path(seed_cluster.temp_dir).exists()


def test_fresh_does_not_use_the_warm_cluster(home, small_cluster):
    warm, _ = run_task(home, "small_nodes")
    fresh, progress = run_task(home, "small_nodes", fresh=True)
    assert set(fresh["nodes"]).isdisjoint(warm["nodes"])
    assert not any("warm cluster" in line for line in progress)
    records = RunStore(str(home / "runs")).list_records()
    (record,) = [
        r for r in records if r.task == "small.small_nodes" and "warm_cluster" not in r.cluster
    ]
    assert wait_until_gone(record.cluster["temp_dir"]) == []
    assert pids_mentioning(small_cluster.temp_dir)


def test_a_killed_keeper_is_cleaned_up_by_the_next_command(home, small_cluster):
    os.kill(small_cluster.owner.pid, signal.SIGKILL)
    assert wait_for(lambda: not small_cluster.owner.is_running())
    assert pids_mentioning(small_cluster.temp_dir), "its nodes outlive the keeper"
    result = flyray_cli(home, "cluster", "list")
    assert "cleaned up warm cluster 'small': its keeper" in result.stderr
    assert wait_until_gone(small_cluster.temp_dir) == []
    assert registry(home).get("small") is None and not Path(small_cluster.temp_dir).exists()


def test_a_reuse_policy_keeps_the_cluster_warm_for_its_idle_ttl(home):
    # The run's own options (here env vars) are part of the cluster kept, so runs alike match.
    first, progress = run_task(home, "reused_nodes", env_vars={"RUN_OPTION": "1"})
    assert any("kept warm for reuse: stops after 45 s unused" in line for line in progress)
    entry = registry(home).get("reused")
    assert entry is not None and entry.state == "running" and entry.idle_timeout == 45
    second, progress = run_task(home, "reused_nodes", env_vars={"RUN_OPTION": "1"})
    assert second["nodes"] == first["nodes"]  # the very same Ray node
    assert any("on warm cluster 'reused' (1 nodes)" in line for line in progress)
    flyray_cli(home, "cluster", "down", "reused")
    assert wait_until_gone(entry.temp_dir) == []


def test_idle_timeout_stops_an_unused_cluster(home):
    entry = up(home, "--name", "idle", "--idle-timeout", "3", TASKS, "small")
    assert entry.idle_timeout == 3
    assert wait_until_gone(entry.temp_dir, timeout=30) == []
    assert registry(home).get("idle") is None and not Path(entry.temp_dir).exists()


def test_a_dead_cluster_up_is_cleaned_up_by_the_next_command(home):
    """`flyray cluster up` killed while its nodes start: they are found by their temp dir."""
    root, _ = _started_head()
    dead = Process(pid=2**22 + 1, start=1)  # above Linux's default pid_max: never running
    entry = WarmCluster("half-up", {}, "x.py t", 60.0, dead, temp_dir=str(root))
    with registry(home).locked():
        registry(home).put(entry)
    progress = []
    assert clean_up(registry(home), progress.append) == ["half-up"]
    assert "its `flyray cluster up` (pid 4194305) had died" in progress[0]
    assert wait_until_gone(str(root)) == [] and not root.exists()
    assert registry(home).get("half-up") is None


def test_a_keeper_killed_as_it_starts_still_stops_its_cluster():
    """SIGTERM right after start_reaper: it is held until the handler is set, then honoured."""
    root, leaders = _started_head()
    pid = start_reaper(leaders=leaders, temp_dir=root, after=600)
    os.kill(pid, signal.SIGTERM)
    assert wait_until_gone(str(root)) == [] and not root.exists()


def _started_head() -> tuple[Path, Any]:
    """A one-node Ray cluster in a temp dir of its own, started and detached (no owner)."""
    root = Path(tempfile.mkdtemp(prefix="fwt-", dir="/tmp"))
    cluster = LocalRayCluster(
        NodeSpec(name="head", head=True, num_cpus=1),
        root=root,
        dashboard=False,
        client_server=False,
    )
    cluster.start()
    return root, cluster.detach()
