"""The owner of a detached local cluster: it waits, then stops it, whatever its caller does.

Two waits, one teardown:

- ``--after SECONDS``: ``ttlSecondsAfterFinished``. KubeRay deletes a RayJob's cluster that
  long after the job ends; the local-cluster executor detaches the cluster and starts this
  module, so the caller gets its result at once and the cluster still goes away on time.
- ``--registry DIR --name NAME``: the keeper of a warm cluster (``flyray cluster up``). It
  waits until the cluster has been idle for its idle timeout (``warm.keeper``), then stops
  it and removes its registry entry.

A SIGTERM (``kill PID``, ``flyray cluster down``) ends the wait early; the cluster is stopped
either way. Started in a session of its own:

    python -m flyray.executors.localcluster.reaper --after 600 --temp-dir DIR --leader PID:START ...
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from flyray.executors.localcluster.procs import start_leader, stop_detached

__all__ = ["main", "start_reaper"]


def start_reaper(
    *,
    leaders: Mapping[int, int],
    temp_dir: Path,
    after: float | None = None,
    registry: Path | None = None,
    name: str | None = None,
) -> int:
    """Start a detached reaper (``after``) or keeper (``registry`` and ``name``); its pid."""
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
    # Born with SIGTERM blocked (the mask survives exec): a `kill` before its handler is set
    # waits for it, instead of killing the reaper and leaving the cluster to nobody.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        with (Path(temp_dir) / "logs" / "reaper.err").open("ab") as log:
            process = start_leader(argv, stdout=subprocess.DEVNULL, stderr=log)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return process.pid


def main(argv: Sequence[str] | None = None) -> int:
    """Wait (TTL or idle), then stop the cluster; a SIGTERM ends the wait early."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.registry is not None and not args.name:
        parser.error("--registry needs --name")
    leaders = dict(_leader(text) for text in args.leader)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # one sent early lands here
        if args.registry is not None:
            _keep(args.registry, args.name)
        else:
            time.sleep(args.after)  # the TTL itself: there is no condition to wait for
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second `kill` must not cut this short
        if args.registry is not None:
            _mark(args.registry, args.name, stopping=True)  # no run may lease it any more
        stop_detached(leaders, args.temp_dir)
        if args.registry is not None:
            _mark(args.registry, args.name, stopping=False)
    return 0


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


def _leader(text: str) -> tuple[int, int]:
    pid, _, start = text.partition(":")
    return int(pid), int(start)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flyray.executors.localcluster.reaper")
    wait = parser.add_mutually_exclusive_group(required=True)
    wait.add_argument("--after", type=float, help="seconds to keep the cluster")
    wait.add_argument("--registry", type=Path, help="the warm-cluster registry (with --name)")
    parser.add_argument("--name", help="the warm cluster's name in --registry")
    parser.add_argument("--temp-dir", type=Path, required=True, help="the cluster's temp dir")
    parser.add_argument("--leader", action="append", default=[], help="PID:START of a node")
    return parser


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill PID` stops the cluster now
    sys.exit(main())
