"""A cluster's guard: it stops the nodes when its owner dies, and leaves them when released.

No Ray here: a "node" is a session leader with the cluster's ``--temp-dir`` in its command
line and a child in its session, a "driver" has the cluster's token file in its environment:
that is all the guard goes by.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from flyray.executors.localcluster.procs import start_leader, start_time, terminate_nodes
from flyray.executors.localcluster.reaper import release_guard, start_guard
from tests.procs import session_members, wait_until, wait_until_gone, wait_until_sessions_end

OWNER = """
import sys, time
from pathlib import Path
from flyray.executors.localcluster.reaper import start_guard
guard = start_guard(Path(sys.argv[1]), keep_temp_dir=False)
print(guard.pid, flush=True)
time.sleep(300)
"""
NODE = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"


@pytest.fixture
def temp_dir():
    """A cluster temp dir as LocalRayCluster makes one (with its logs/), removed after."""
    path = Path(tempfile.mkdtemp(prefix="fgt-", dir="/tmp"))
    (path / "logs").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def node(temp_dir):
    """A fake node of the cluster under ``temp_dir``: its leader's pid; stopped after."""
    argv = [sys.executable, "-c", NODE, f"--temp-dir={temp_dir}"]
    leader = start_leader(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = start_time(leader.pid)
    assert started is not None
    assert wait_until(lambda: len(session_members([leader.pid])) == 2), "its child did not start"
    yield leader.pid
    terminate_nodes({leader.pid: started}, timeout=1.0, children=[leader])


def test_guard_stops_the_cluster_when_its_owner_is_killed(temp_dir, node):
    # a job's driver: a session of its own, found by the cluster's token file in its environment
    env = {"RAY_AUTH_TOKEN_PATH": str(temp_dir / "auth_token"), "PATH": "/usr/bin:/bin"}
    quiet = subprocess.DEVNULL
    driver = start_leader(["sleep", "300"], stdout=quiet, stderr=quiet, env=env)
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(temp_dir)], stdout=subprocess.PIPE, text=True
    )
    guard_pid = int(owner.stdout.readline())
    assert session_members([guard_pid]) == [guard_pid]  # the guard leads a session of its own
    assert session_members([node]), "the node should run while its owner does"
    owner.kill()
    owner.wait()
    assert wait_until_sessions_end([node, driver.pid], timeout=30) == []
    assert driver.wait(timeout=5) == -9  # a stray is killed outright
    assert wait_until_gone(str(temp_dir), timeout=10) == []  # the guard (--temp-dir) exited too
    assert not temp_dir.exists()


def test_a_released_guard_leaves_the_cluster_alone(temp_dir, node):
    guard = start_guard(temp_dir, keep_temp_dir=False)
    release_guard(guard)  # at once: the signal waits for its handler, it is not lost
    assert guard.returncode == 0
    assert len(session_members([node])) == 2 and temp_dir.is_dir()
