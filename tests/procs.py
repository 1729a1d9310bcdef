"""Test helpers: find processes by their command line, and wait for them to be gone."""

from __future__ import annotations

import os
import time
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
    deadline = time.monotonic() + timeout
    while (left := pids_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
