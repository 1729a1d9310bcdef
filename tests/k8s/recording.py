"""What a kuberay test run reports: its progress lines and log text, and its one record."""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

from flyray.store.runstore import RunStore

__all__ = ["Recorder", "only_record", "read_stderr_until"]


class Recorder:
    """Progress lines and log text of one run; ``at`` runs a callback on a matching line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.log_text = ""
        self.hooks: list[tuple[str, Any]] = []

    def progress(self, line: str) -> None:
        self.lines.append(line)
        for pattern, hook in list(self.hooks):
            if re.search(pattern, line):
                self.hooks.remove((pattern, hook))
                hook()

    def log(self, text: str) -> None:
        self.log_text += text

    def at(self, pattern: str, hook: Any) -> None:
        self.hooks.append((pattern, hook))


def only_record(store: RunStore) -> Any:
    (record,) = store.list_records()
    return record


def read_stderr_until(proc: subprocess.Popen[str], pattern: str, timeout: float = 120) -> str:
    """``proc``'s stderr, read line by line until ``pattern`` (a regex) appears in it.

    Fails the test (with what was read) if ``proc`` exits or ``timeout`` passes first.
    """
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, seen):
        assert time.monotonic() < deadline and proc.poll() is None, seen
        seen += proc.stderr.readline()
    return seen
