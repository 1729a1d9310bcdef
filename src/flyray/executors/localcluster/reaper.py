"""The owner of a detached local cluster: it waits, then stops it, whatever its caller does.

Three waits, one teardown:

- ``--owner PID:START``: the guard of a cluster that a flyray process runs (``LocalRayCluster``
  starts one with every cluster). It waits for that process to exit; if the process stopped
  or handed over its cluster first, it said so (SIGUSR1) and the guard exits without doing
  anything; if it died without (``kill -9``, a crash), the guard stops the nodes it finds
  under the cluster's temp dir and removes the dir (unless ``--keep-temp-dir``).
- ``--after SECONDS``: ``ttlSecondsAfterFinished``. KubeRay deletes a RayJob's cluster that
  long after the job ends; the local-cluster executor detaches the cluster and starts this
  module, so the caller gets its result at once and the cluster still goes away on time.
  With ``--registry DIR --name NAME`` too, its registry entry ("kept") is removed with it.
- ``--registry DIR --name NAME``: the keeper of a warm cluster (``flyray cluster up``). It
  waits until the cluster has been idle for its idle timeout (``warm.keeper``), then stops
  it and removes its registry entry.

A SIGTERM (``kill PID``, ``flyray cluster down``) ends the wait early; the cluster is stopped
either way. So each of these processes has an owner and exits with it: a guard's is the flyray
process, a keeper's its registry entry (``flyray cluster list`` shows it), and a TTL reaper
owns its cluster until the TTL ends. Started in a session of its own:

    python -m flyray.executors.localcluster.reaper --after 600 --temp-dir DIR --leader PID:START ...
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from flyray.executors.localcluster.procs import (
    is_running,
    leaders_under,
    start_leader,
    start_time,
    stop_detached,
)

__all__ = ["main", "release_guard", "start_guard", "start_reaper"]

log = logging.getLogger(__name__)

_SIGNALS = {signal.SIGTERM, signal.SIGUSR1}  # stop now; released (a guard only)
_OWNER_POLL_S = 0.5  # how often the owner is looked at where a pidfd cannot wait for it


class _Released(Exception):
    """SIGUSR1: the owner stopped its cluster or handed it over; the guard has nothing to do."""


def start_reaper(
    *,
    leaders: Mapping[int, int],
    temp_dir: Path,
    after: float | None = None,
    registry: Path | None = None,
    name: str | None = None,
) -> int:
    """Start a detached reaper (``after``) or keeper (``registry`` and ``name``); its pid.

    A reaper given ``registry`` and ``name`` too removes that entry with the cluster.
    """
    argv = [
        sys.executable,
        "-m",
        "flyray.executors.localcluster.reaper",
        "--temp-dir",
        str(temp_dir),
    ]
    argv += ["--after", str(after)] if after is not None else []
    argv += ["--registry", str(registry), "--name", str(name)] if registry is not None else []
    for pid, start in leaders.items():
        argv += ["--leader", f"{pid}:{start}"]
    return _spawn(argv, temp_dir).pid


def start_guard(temp_dir: Path, *, keep_temp_dir: bool) -> subprocess.Popen[bytes]:
    """Start the guard of the cluster under ``temp_dir``, owned by this process.

    Should this process die before ``release_guard``, the guard stops the cluster's nodes.
    """
    owner = f"{os.getpid()}:{start_time(os.getpid()) or 0}"
    argv = [sys.executable, "-m", "flyray.executors.localcluster.reaper", "--owner", owner]
    argv += ["--temp-dir", str(temp_dir)] + (["--keep-temp-dir"] if keep_temp_dir else [])
    return _spawn(argv, temp_dir)


def release_guard(guard: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """Tell a guard its cluster is stopped or has a new owner, and wait for it to exit."""
    if guard.poll() is None:
        guard.send_signal(signal.SIGUSR1)
    try:
        guard.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("guard %d still runs %g s after SIGUSR1; killing it", guard.pid, timeout)
        guard.kill()
        guard.wait()


def _spawn(argv: list[str], temp_dir: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own, its errors to ``<temp_dir>/logs/reaper.err``."""
    # Born with SIGTERM and SIGUSR1 blocked (the mask survives exec): a signal sent before its
    # handler is set waits for it, instead of killing the reaper with the cluster left to nobody.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        with (Path(temp_dir) / "logs" / "reaper.err").open("ab") as log:
            return start_leader(argv, stdout=subprocess.DEVNULL, stderr=log)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def main(argv: Sequence[str] | None = None) -> int:
    """Wait (owner, TTL or idle), then stop the cluster; a SIGTERM ends the wait early."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.registry is not None and not args.name:
        parser.error("--registry needs --name")
    if (args.owner is not None) + (args.after is not None) + (args.registry is not None) == 0:
        parser.error("one of --owner, --after or --registry is required")
    if args.owner is not None and (args.after is not None or args.registry is not None):
        parser.error("--owner goes with neither --after nor --registry")
    leaders = dict(_pid_start(text) for text in args.leader)
    released = False
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)  # one sent early lands here
        if args.after is not None:
            time.sleep(args.after)  # the TTL itself: there is no condition to wait for
        elif args.registry is not None:
            _keep(args.registry, args.name)
        elif args.owner is not None:
            _wait_for_exit(*_pid_start(args.owner))
            print(f"the owner {args.owner} died: stopping its cluster", file=sys.stderr, flush=True)
    except _Released:
        released = args.owner is not None  # only a guard can be released; others stop now
    finally:
        for signum in _SIGNALS:  # a second `kill` must not cut the teardown short
            signal.signal(signum, signal.SIG_IGN)
        if not released:
            _teardown(args, leaders)
    return 0


def _teardown(args: argparse.Namespace, leaders: dict[int, int]) -> None:
    """Stop the cluster's nodes (a guard finds them under the temp dir) and remove the dir."""
    if args.owner is not None:
        leaders = {**leaders, **leaders_under(args.temp_dir)}
    if args.registry is not None:
        _mark(args.registry, args.name, stopping=True)  # no run may lease it any more
    stop_detached(leaders, args.temp_dir, keep_temp_dir=args.keep_temp_dir)
    if args.registry is not None:
        _mark(args.registry, args.name, stopping=False)


def _wait_for_exit(pid: int, start: int) -> None:
    """Block until the process ``pid`` that started at ``start`` has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd (old kernel): look now and then
        while is_running(pid, start):
            time.sleep(_OWNER_POLL_S)
        return
    try:
        if is_running(pid, start):  # else gone already, or the pid is another process's now
            select.select([fd], [], [])  # a pidfd turns readable when its process exits
    finally:
        os.close(fd)


def _keep(root: Path, name: str) -> None:
    """Keep warm cluster ``name`` until it is idle (or no longer this keeper's)."""
    from flyray.executors.localcluster.warm.keeper import wait_until_idle
    from flyray.executors.localcluster.warm.registry import Process, Registry

    why = wait_until_idle(Registry(root), name, keeper=Process.current())
    print(f"stopping warm cluster {name!r}: {why}", file=sys.stderr, flush=True)


def _mark(root: Path, name: str, *, stopping: bool) -> None:
    """Mark this keeper's registry entry "stopping" (before the teardown), or remove it (after)."""
    from flyray.executors.localcluster.warm.registry import STOPPING, Process, Registry

    registry, me = Registry(root), Process.current()
    with registry.locked():
        entry = registry.get(name)
        if entry is None or entry.owner != me:
            return
        if stopping:
            entry.state = STOPPING
            registry.put(entry)
        else:
            registry.remove(name)


def _pid_start(text: str) -> tuple[int, int]:
    pid, _, start = text.partition(":")
    return int(pid), int(start)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flyray.executors.localcluster.reaper")
    parser.add_argument("--owner", help="PID:START of the process whose death stops the cluster")
    parser.add_argument("--after", type=float, help="seconds to keep the cluster")
    parser.add_argument(
        "--registry", type=Path, help="the registry of its entry (with --name); alone: keep warm"
    )
    parser.add_argument("--name", help="the warm cluster's name in --registry")
    parser.add_argument("--temp-dir", type=Path, required=True, help="the cluster's temp dir")
    parser.add_argument("--leader", action="append", default=[], help="PID:START of a node")
    parser.add_argument(
        "--keep-temp-dir", action="store_true", help="leave the temp dir (a caller's own root)"
    )
    return parser


def _release(*_: object) -> None:
    raise _Released


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill PID` stops the cluster now
    signal.signal(signal.SIGUSR1, _release)  # a guard's owner stopped the cluster itself
    sys.exit(main())
