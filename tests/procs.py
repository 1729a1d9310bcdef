"""Test helpers: find processes by their command line or session, and wait for them to be gone."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def pids_mentioning(text: str) -> list[int]:
    """PIDs of live (non-zombie) processes whose command line contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def wait_until_gone(text: str, timeout: float = 15.0) -> list[int]:
    """Poll until no process mentions ``text``; returns the survivors at the deadline."""
    return _poll_empty(lambda: pids_mentioning(text), timeout)


def session_members(sessions: Iterable[int]) -> list[int]:
    """PIDs of live (non-zombie) processes in one of ``sessions`` (a Ray node's keep its own)."""
    wanted, found = set(sessions), []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) in wanted and fields[0] != "Z":
            found.append(int(proc.name))
    return found


def wait_until_sessions_end(sessions: Iterable[int], timeout: float = 15.0) -> list[int]:
    """Poll until no process of ``sessions`` runs; returns the survivors at the deadline."""
    sessions = list(sessions)
    return _poll_empty(lambda: session_members(sessions), timeout)


def node_sessions(nodes: str) -> list[int]:
    """The sessions of a run record's ``cluster["nodes"]`` ("pid:start ..."): one per node."""
    return [int(item.split(":")[0]) for item in nodes.split()]


def _poll_empty(find: Callable[[], list[int]], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := find()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` until it holds; whether it did before the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
