"""What a sandbox session started, written down as it starts it, so it can be removed later.

A session's folder holds ``owner.json`` (the owning process: pid and start time, so a reused
pid is never mistaken for it) and ``owned.jsonl``, one line per process group it spawned
(group id, the leader's start time, a name). Whoever cleans up (the session itself, its
watchdog when the session died, or the next session finding a dead one's folder) reads these
records and nothing else: it never looks processes up by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from flyray.executors.localcluster.procs import group_members, is_running, start_time

__all__ = ["Owner", "clean", "stop_group", "sweep"]

OWNER_FILE, OWNED_FILE, KEEP_FILE = "owner.json", "owned.jsonl", "keep"
TERM_GRACE_S = 5.0


class Owner:
    """The records of one session's folder; the owning process writes them as it goes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def claim(self, pid: int | None = None) -> Owner:
        """Write ``owner.json`` naming ``pid`` (this process by default) as the owner."""
        pid = pid or os.getpid()
        self.folder.mkdir(parents=True, exist_ok=True)
        owner = {"pid": pid, "start": start_time(pid)}
        (self.folder / OWNER_FILE).write_text(json.dumps(owner))
        return self

    def owner(self) -> dict[str, Any] | None:
        """The recorded owner, or None for a folder that has no (readable) record."""
        try:
            return json.loads((self.folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            return None

    def owner_alive(self) -> bool:
        found = self.owner()
        return found is not None and is_running(found["pid"], found.get("start"))

    def record_group(self, pgid: int, name: str) -> None:
        """Note a process group this session started (its leader is ``pgid``)."""
        line = json.dumps({"pgid": pgid, "start": start_time(pgid), "name": name})
        with (self.folder / OWNED_FILE).open("a") as out:
            out.write(line + "\n")

    def groups(self) -> list[dict[str, Any]]:
        """Every process group recorded so far, oldest first."""
        try:
            text = (self.folder / OWNED_FILE).read_text()
        except OSError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def keep_folder(self) -> None:
        """Ask whoever cleans up to keep the folder (its logs) and remove only processes."""
        (self.folder / KEEP_FILE).touch()


def stop_group(pgid: int, start: int | None, *, grace: float = TERM_GRACE_S) -> None:
    """SIGTERM the recorded group, wait up to ``grace``, then SIGKILL what is left of it.

    Only processes that belong to the group and started after its recorded leader are
    signalled, one by one: the group id of a group whose members are all gone may be reused.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        members = group_members(pgid, started_after=start)
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else grace * 2)
        while group_members(pgid, started_after=start) and time.monotonic() < deadline:
            time.sleep(0.05)


def clean(folder: Path) -> None:
    """Stop every recorded group (newest first), remove the pods' leftovers and the folder."""
    from flyray.sandbox.pods.kubelet import remove_orphan_dirs
    from flyray.sandbox.pods.net import remove_orphans

    owner = Owner(folder)
    for group in reversed(owner.groups()):
        stop_group(group["pgid"], group.get("start"))
    if shutil.which("ip"):  # without it no pod network was ever made
        with contextlib.suppress(Exception):  # another cleaner may race us to a namespace
            remove_orphans()
    remove_orphan_dirs()
    if not (folder / KEEP_FILE).exists():
        shutil.rmtree(folder, ignore_errors=True)


def sweep(parent: Path, prefix: str) -> list[Path]:
    """Clean the folders ``parent/<prefix>*`` whose owner is gone; the folders cleaned."""
    cleaned = []
    for folder in sorted(parent.glob(f"{prefix}*")):
        owner = Owner(folder)
        if folder.is_dir() and owner.owner() is not None and not owner.owner_alive():
            clean(folder)
            cleaned.append(folder)
    return cleaned
