"""When a warm cluster is idle, and how its keeper waits for that.

The keeper is ``flyray.executors.localcluster.reaper`` started with ``--registry DIR --name NAME``:
a detached process per warm cluster that owns it. It sleeps until ``last_used + idle_timeout``, re-
reads the entry, and returns (so the reaper stops the cluster) once nobody has used the cluster for
``idle_timeout`` seconds and no run holds a lease on it. A run in progress holds a lease, so a long
job is never stopped under it.
"""

from __future__ import annotations

import time

from flyray.executors.localcluster.warm.registry import (
    RUNNING,
    STOPPING,
    Process,
    Registry,
    WarmCluster,
)

__all__ = ["idle_at", "in_use", "wait_until_idle"]


def in_use(entry: WarmCluster) -> bool:
    """True while a run holding a lease on the cluster still runs."""
    return any(process.is_running() for process in entry.leases.values())


def idle_at(entry: WarmCluster) -> float:
    """When (epoch seconds) the cluster becomes idle if nobody uses it before."""
    return entry.last_used + entry.idle_timeout


def wait_until_idle(registry: Registry, name: str, *, keeper: Process) -> str:
    """Block until cluster ``name`` may be stopped; returns why.

    The entry is marked "stopping" under the lock when it went idle, so no run leases it any
    more. Also returns when the entry is gone or names another owner: the keeper then stops
    the nodes it was given, which nobody else keeps.
    """
    while True:
        with registry.locked():
            entry = registry.get(name)
            if entry is None or entry.owner != keeper:
                return "its registry entry is gone or names another keeper"
            if entry.state != RUNNING:
                return f"it is {entry.state}"
            now = time.time()
            busy = in_use(entry)
            if not busy and now >= idle_at(entry):
                entry.state = STOPPING
                registry.put(entry)
                return f"it was idle for {entry.idle_timeout:g} s"
            wake = now + entry.idle_timeout if busy else idle_at(entry)
        time.sleep(wake - now)  # the deadline itself; a run that used it moves it on
