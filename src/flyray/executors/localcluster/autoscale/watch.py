"""A run's view of its cluster's autoscaler: each group's workers and every failed start.

While a run follows its job, a thread reads the cluster's node records (``records``) and
reports a line when a group's count changes (``workers cpu: 1/2 (min 0, max 2)``: one up,
two wanted) and one for each worker that failed to start, with its error; the latter also
goes to flyray's log. A cluster without autoscaling has no records: nothing is reported.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from flyray.executors.localcluster.autoscale.records import (
    FAILED,
    GroupCount,
    alive_node_ports,
    autoscaler_dir,
    group_counts,
    read_records,
)
from flyray.executors.localcluster.health import GcsNodes
from flyray.executors.localcluster.procs import TOKEN_FILE

__all__ = ["POLL_S", "watch_autoscaling"]

log = logging.getLogger(__name__)

POLL_S = 0.5


@contextlib.contextmanager
def watch_autoscaling(temp_dir: Path | str, report: Callable[[str], None]) -> Iterator[None]:
    """Report the autoscaler's work on the cluster under ``temp_dir`` while the block runs."""
    if not autoscaler_dir(temp_dir).is_dir():
        yield
        return
    stop = threading.Event()
    watcher = _Watcher(Path(temp_dir), report)
    thread = threading.Thread(target=watcher.run, args=(stop,), name="autoscaler", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5.0)
        watcher.tick()  # what changed at the very end (a failure just before the job ended)
        watcher.close()


class _Watcher:
    """Remembers what it reported, so that each change and each failure is said once."""

    def __init__(self, temp_dir: Path, report: Callable[[str], None]) -> None:
        self.temp_dir = temp_dir
        self.report = report
        self.counts: dict[str, GroupCount] = {}
        self.failed: set[str] = set()
        token = temp_dir / TOKEN_FILE
        self.gcs = GcsNodes(lambda: token.read_text().strip())

    def close(self) -> None:
        """Close the channel to the GCS."""
        self.gcs.close()

    def run(self, stop: threading.Event) -> None:
        while True:
            self.tick()
            if stop.wait(POLL_S):
                return

    def tick(self) -> None:
        """Report the groups whose counts changed and the failures not reported yet."""
        alive = alive_node_ports(self.temp_dir, self.gcs)
        for group, count in group_counts(self.temp_dir, alive).items():
            if self.counts.get(group) != count:
                self.counts[group] = count
                self.report(f"workers {group}: {count}")
        for record in read_records(self.temp_dir):
            if record.state == FAILED and record.instance_id not in self.failed:
                self.failed.add(record.instance_id)
                line = f"worker {record.instance_id} of group {record.group} failed to start: "
                log.warning("%s%s", line, record.error)
                self.report(line + record.error)
