"""Keep a finished run's local cluster for its TTL, then stop it: ``ttlSecondsAfterFinished``.

KubeRay deletes a RayJob's cluster ``ttlSecondsAfterFinished`` after the job ends. Locally the
executor detaches the cluster and starts this module in a session of its own, so the caller
gets its result at once and the cluster still goes away on time, whatever the caller does:

    python -m flyray.executors.reaper --after 600 --temp-dir DIR --leader PID:START ...
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from flyray.executors.nodes import terminate_nodes

__all__ = ["main", "start_reaper"]


def start_reaper(*, after: float, leaders: Mapping[int, int], temp_dir: Path) -> int:
    """Start a detached reaper for a detached cluster; returns its pid."""
    argv = [sys.executable, "-m", "flyray.executors.reaper", "--after", str(after)]
    argv += ["--temp-dir", str(temp_dir)]
    for pid, start in leaders.items():
        argv += ["--leader", f"{pid}:{start}"]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process.pid


def main(argv: Sequence[str] | None = None) -> int:
    """Wait out the TTL (a SIGTERM ends the wait early), then stop the cluster."""
    args = _parser().parse_args(argv)
    leaders = dict(_leader(text) for text in args.leader)
    try:
        time.sleep(args.after)  # the TTL itself: there is no condition to wait for
    finally:
        terminate_nodes(leaders, timeout=5.0)
        shutil.rmtree(args.temp_dir, ignore_errors=True)
    return 0


def _leader(text: str) -> tuple[int, int]:
    pid, _, start = text.partition(":")
    return int(pid), int(start)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flyray.executors.reaper")
    parser.add_argument("--after", type=float, required=True, help="seconds to keep the cluster")
    parser.add_argument("--temp-dir", type=Path, required=True, help="the cluster's temp dir")
    parser.add_argument("--leader", action="append", default=[], help="PID:START of a node")
    return parser


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill PID` stops the cluster now
    sys.exit(main())
