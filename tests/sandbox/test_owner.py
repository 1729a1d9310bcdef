"""Nothing a sandbox session started outlives it: the watchdog and the sweep, real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flyray.executors.localcluster.procs import group_members, is_running, start_time
from flyray.sandbox.owner import Owner, sweep
from flyray.sandbox.process import ManagedProcess

ROOT = Path(__file__).parents[2]
GONE_TIMEOUT_S = 20.0


def wait_for(condition, timeout: float = GONE_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_the_watchdog_removes_what_a_killed_owner_started(tmp_path: Path, sig: int) -> None:
    folder = tmp_path / "session"
    owner = subprocess.Popen(
        [sys.executable, "-m", "tests.sandbox.owner_child", str(folder)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        pgids = [int(pgid) for pgid in owner.stdout.readline().split()]
        assert len(pgids) == 2
        assert wait_for(lambda: all(len(group_members(pgid)) == 2 for pgid in pgids))
        os.kill(owner.pid, sig)
        owner.wait(10)
        assert wait_for(lambda: not any(group_members(pgid) for pgid in pgids)), [
            group_members(pgid) for pgid in pgids
        ]
        assert wait_for(lambda: not folder.exists()), "the session folder was kept"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_a_released_watchdog_exits_and_leaves_a_kept_folder(tmp_path: Path) -> None:
    from flyray.sandbox.watchdog import Watchdog

    folder = tmp_path / "session"
    Owner(folder).claim().keep_folder()
    watchdog = Watchdog(folder).start()
    watchdog.release()
    assert watchdog.process is not None and watchdog.process.returncode == 0
    assert (folder / "watchdog.log").exists()


def test_the_sweep_cleans_a_dead_owners_folder_only(tmp_path: Path) -> None:
    dead, live = tmp_path / "flyray-x-dead", tmp_path / "flyray-x-live"
    victim = ManagedProcess("victim", ["sleep", "300"], tmp_path / "victim.log")
    bystander = ManagedProcess("bystander", ["sleep", "300"], tmp_path / "bystander.log")
    try:
        # a dead owner: this process's pid with another start time (a reused pid)
        Owner(dead).claim()
        record = json.loads((dead / "owner.json").read_text())
        (dead / "owner.json").write_text(json.dumps({**record, "start": record["start"] - 1}))
        Owner(dead).record_group(victim.popen.pid, "victim")
        Owner(live).claim().record_group(bystander.popen.pid, "bystander")

        assert sweep(tmp_path, "flyray-x-") == [dead]
        assert wait_for(lambda: not victim.alive())
        assert not dead.exists()
        assert bystander.alive() and live.exists()
    finally:
        victim.stop()
        bystander.stop()


def test_an_owner_is_told_from_a_reused_pid() -> None:
    start = start_time(os.getpid())
    assert start is not None
    assert is_running(os.getpid(), start)
    assert not is_running(os.getpid(), start + 1)
    assert start_time(2**22 + 1) is None  # above pid_max: never a process
