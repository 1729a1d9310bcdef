"""The processes of local Ray clusters: started as session leaders, known from /proc, stopped.

Every process flyray leaves running (a node's ``ray start --block``, a reaper) leads a session
of its own, and Ray's processes keep their node's session, so a node is stopped by its leader and
its session. A process is known by {pid: start time} (/proc clock ticks), so a reused pid is never
signalled; that works from any process, which is how a reaper or a later flyray command stops a
cluster it did not start. Clusters this process started and did not stop are stopped at its exit.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol

__all__ = [
    "TOKEN_FILE",
    "forget_at_exit",
    "is_running",
    "kill_strays",
    "leaders_under",
    "start_leader",
    "start_time",
    "stop_at_exit",
    "stop_detached",
    "terminate_nodes",
    "terminate_process",
    "terminate_under",
]

log = logging.getLogger(__name__)

_POLL_S = 0.1
_SWEEPS = 3
TOKEN_FILE = "auth_token"  # a cluster's auth token: <temp dir>/auth_token (see cluster.py)


def start_leader(
    argv: Sequence[str],
    *,
    stdout: IO[bytes] | int,
    stderr: IO[bytes] | int,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new session, so that it can be stopped as a group."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=env,
        start_new_session=True,
    )


def start_time(pid: int) -> int | None:
    """When ``pid`` started (/proc clock ticks), None if it is gone: with the pid, an identity."""
    st = _stat(pid)
    return None if st is None else st[4]


def is_running(pid: int, start: int) -> bool:
    """True while the process ``pid`` that started at ``start`` runs (a zombie does not)."""
    return bool(_alive({pid: start}))


def group_members(pgid: int, *, started_after: int | None = None) -> list[int]:
    """Running processes of process group ``pgid`` (started no earlier than ``started_after``)."""
    return [
        pid
        for pid, (state, _, pgrp, _, start) in _all_stats().items()
        if pgrp == pgid
        and state not in ("Z", "X")
        and (started_after is None or start >= started_after)
    ]


def leaders_under(temp_dir: Path | str) -> dict[int, int]:
    """{pid: start time} of the `ray start` processes whose --temp-dir is ``temp_dir`` or below.

    How to find the nodes of a cluster whose starter died before it could say which they were.
    """
    mark = f"--temp-dir={temp_dir}".encode()
    found = {}
    for pid, st in _all_stats().items():
        if st[3] != pid or st[0] in ("Z", "X"):  # every node leads a session of its own
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg == mark or arg.startswith(mark + b"/") for arg in argv):
            found[pid] = st[4]
    return found


def terminate_nodes(
    leaders: Mapping[int, int],
    *,
    timeout: float,
    children: Sequence[subprocess.Popen[bytes]] = (),
) -> None:
    """Stop the Ray nodes led by ``leaders`` ({pid: start time}) and wait until all are gone.

    SIGTERM goes to each `ray start` alone: it then stops its children in order (about 3 s).
    A SIGTERM to the whole group leaves the GCS and `ray start` hanging for over 20 s. Works
    from any process; ``children`` are the leaders' Popen objects when this process has them.
    """
    if not leaders:
        return
    sessions = set(leaders)
    tracked = _session_processes(sessions, _descendants_of(sessions))
    for pid, start in leaders.items():
        if _alive({pid: start}):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        else:  # `ray start` is gone: nothing can stop its children in order any more
            _signal_group(pid, signal.SIGTERM)
    if _wait_gone(children, sessions, tracked, time.monotonic() + timeout):
        return
    log.warning("Ray nodes still running %g s after SIGTERM; sending SIGKILL", timeout)
    for pid in leaders:
        _signal_group(pid, signal.SIGKILL)
    for pid, start in _alive(tracked).items():
        _kill_if_same(pid, start)
    if not _wait_gone(children, sessions, tracked, time.monotonic() + 10.0):
        log.error("Ray processes survived SIGKILL: %s", sorted(_alive(tracked)))


def stop_detached(
    leaders: Mapping[int, int],
    temp_dir: Path | str | None,
    *,
    keep_temp_dir: bool = False,
    timeout: float = 5.0,
) -> None:
    """Stop a detached cluster's nodes (``terminate_nodes``) and strays, remove its temp dir.

    The nodes are ``leaders`` and every node under ``temp_dir`` (those an autoscaler started).
    """
    terminate_nodes(leaders, timeout=timeout)
    if temp_dir:
        terminate_under(temp_dir, timeout=timeout)
        kill_strays(Path(temp_dir) / TOKEN_FILE)
        if not keep_temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def terminate_under(temp_dir: Path | str, *, timeout: float) -> None:
    """Stop every node whose temp dir is ``temp_dir`` or below (``leaders_under``), until none.

    That finds the workers an autoscaler started; it looks again after each round, for one
    it started while its head was stopping (three rounds at most).
    """
    for _ in range(_SWEEPS):
        if not (found := leaders_under(temp_dir)):
            return
        terminate_nodes(found, timeout=timeout)


def kill_strays(token_path: Path | str, *, timeout: float = 10.0) -> None:
    """SIGKILL what is left of a stopped cluster outside its nodes' sessions; wait till gone.

    A Ray job's driver runs in a session of its own, and Ray stops it only while the job's
    supervisor lives: a head killed with SIGKILL leaves the driver running. Every process of a
    cluster has the cluster's token file in its environment (``RAY_AUTH_TOKEN_PATH``), so
    that is how they are found; call this once the nodes are stopped.
    """
    mark = f"RAY_AUTH_TOKEN_PATH={token_path}".encode()
    strays = {}
    for pid, st in _all_stats().items():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if mark in environ and pid != os.getpid() and st[0] not in ("Z", "X"):
            strays[pid] = st[4]
    if not strays:
        return
    log.warning("killing processes a stopped Ray cluster left behind: %s", sorted(strays))
    for pid, start in strays.items():
        _kill_if_same(pid, start)
    if not _wait_gone([], set(), strays, time.monotonic() + timeout):
        log.error("processes survived SIGKILL: %s", sorted(_alive(strays)))


def terminate_process(pid: int, start: int, *, timeout: float) -> None:
    """SIGTERM one process if it still runs, and wait until it is gone (at most ``timeout``)."""
    if is_running(pid, start):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_running(pid, start) and time.monotonic() <= deadline:
        time.sleep(_POLL_S)


# -- clean-up at exit ----------------------------------------------------------------------


class _Stoppable(Protocol):
    def stop(self) -> None: ...


# What still runs when the interpreter exits is stopped then, not left behind.
_RUNNING: weakref.WeakSet[_Stoppable] = weakref.WeakSet()


def stop_at_exit(cluster: _Stoppable) -> None:
    """Have ``cluster.stop()`` called when this interpreter exits, unless forgotten before."""
    _RUNNING.add(cluster)


def forget_at_exit(cluster: _Stoppable) -> None:
    """Undo ``stop_at_exit``: the cluster was stopped, or is left running on purpose."""
    _RUNNING.discard(cluster)


@atexit.register
def _stop_running_clusters() -> None:
    """Stop every cluster this process started and did not stop."""
    for cluster in list(_RUNNING):
        cluster.stop()


# -- /proc ---------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int, int, int] | None:
    """(state, ppid, pgrp, session, start time) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])


def _all_stats() -> dict[int, tuple[str, int, int, int, int]]:
    """The stat of every process on the machine."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            stats[int(entry)] = st
    return stats


def _descendants_of(roots: Iterable[int]) -> dict[int, int]:
    """{pid: start time} of every descendant of ``roots`` (and the roots themselves)."""
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, st in stats.items():
        children.setdefault(st[1], []).append(pid)
    found, todo = {}, [r for r in roots if r in stats]
    while todo:
        pid = todo.pop()
        found[pid] = stats[pid][4]
        todo.extend(c for c in children.get(pid, ()) if c not in found)
    return found


def _session_processes(sessions: set[int], known: Mapping[int, int]) -> dict[int, int]:
    """``known`` plus every process in one of ``sessions`` (Ray workers keep their session)."""
    found = dict(known)
    for pid, st in _all_stats().items():
        if st[3] in sessions and pid not in found:
            found[pid] = st[4]
    return found


def _alive(tracked: Mapping[int, int]) -> dict[int, int]:
    """The tracked processes still running (same pid and start time, not a zombie)."""
    alive = {}
    for pid, start in tracked.items():
        st = _stat(pid)
        if st is not None and st[4] == start and st[0] not in ("Z", "X"):
            alive[pid] = start
    return alive


def _wait_gone(
    leaders: Sequence[subprocess.Popen[bytes]],
    sessions: set[int],
    tracked: dict[int, int],
    deadline: float,
) -> bool:
    """Reap our leaders and poll until no tracked or session process runs; False at deadline."""
    while True:
        for process in leaders:
            process.poll()
        tracked.update(_session_processes(sessions, {}))
        if not _alive(tracked):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_if_same(pid: int, start: int) -> None:
    """SIGKILL ``pid`` unless it exited and the pid was reused."""
    st = _stat(pid)
    if st is not None and st[4] == start:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
