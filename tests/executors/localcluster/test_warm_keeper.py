"""The keeper's wait: idle means unused for idle_timeout and no live lease; it marks the entry."""

import threading
import time

from flyray.executors.localcluster.warm.keeper import idle_at, in_use, wait_until_idle
from flyray.executors.localcluster.warm.registry import Process, Registry, WarmCluster

DEAD = Process(pid=2**22 + 1, start=1)  # above Linux's default pid_max: never running


def put(registry, **changes) -> WarmCluster:
    values = {
        "name": "ray-env",
        "key": {},
        "source": "s",
        "idle_timeout": 0.2,
        "owner": Process.current(),
        "state": "running",
    }
    entry = WarmCluster(**{**values, **changes})
    with registry.locked():
        registry.put(entry)
    return entry


def test_idle_at_and_in_use():
    entry = WarmCluster("a", {}, "s", 30.0, DEAD, last_used=100.0, leases={"x": DEAD})
    assert idle_at(entry) == 130.0 and not in_use(entry)
    entry.leases["y"] = Process.current()
    assert in_use(entry)


def test_an_idle_cluster_is_marked_stopping(tmp_path):
    registry = Registry(tmp_path)
    put(registry, last_used=time.time() - 10, leases={"gone": DEAD})
    why = wait_until_idle(registry, "ray-env", keeper=Process.current())
    assert why == "it was idle for 0.2 s"
    assert registry.get("ray-env").state == "stopping"


def test_a_keeper_without_its_entry_returns(tmp_path):
    registry = Registry(tmp_path)
    assert "gone" in wait_until_idle(registry, "ray-env", keeper=Process.current())
    put(registry, owner=DEAD)
    assert "another keeper" in wait_until_idle(registry, "ray-env", keeper=Process.current())
    assert registry.get("ray-env").state == "running"  # not this keeper's to mark


def test_a_leased_cluster_waits_for_its_run(tmp_path):
    registry = Registry(tmp_path)
    put(registry, last_used=time.time() - 10, leases={"run": Process.current()})
    done = []
    keeper = threading.Thread(
        target=lambda: done.append(wait_until_idle(registry, "ray-env", keeper=Process.current()))
    )
    keeper.start()
    assert registry.get("ray-env").state == "running" and not done  # the run holds it
    registry.update("ray-env", lambda e: e.leases.clear())
    keeper.join(timeout=10)
    assert done == ["it was idle for 0.2 s"]
