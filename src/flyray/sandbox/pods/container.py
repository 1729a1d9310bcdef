"""One container of a process-kubelet pod: its process, restarts and reported status.

A container that exits is restarted as a kubelet does: the first time at once, then after a
back-off of 10 s, doubled each time up to 5 min (reset once it ran 10 min), waiting meanwhile
with reason ``CrashLoopBackOff``; ``restartCount`` and ``lastState`` say what happened.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["Container", "Probe", "now"]

BACKOFF_S, MAX_BACKOFF_S = 10.0, 300.0  # a kubelet's restart back-off
BACKOFF_RESET_S = 2 * MAX_BACKOFF_S  # a container that ran this long starts afresh


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Probe:
    """A container's readiness probe and what it has found so far."""

    spec: dict[str, Any]
    due: float  # monotonic time of the next check
    successes: int = 0
    failures: int = 0

    @property
    def period(self) -> float:
        return float(self.spec.get("periodSeconds", 10))


@dataclass
class Container:
    """One container's process and state, as ``containerStatuses`` reports it."""

    spec: dict[str, Any]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    finished_at: str = ""
    ready: bool = False
    probe: Probe | None = None
    waiting: tuple[str, str] = ("ContainerCreating", "")
    restarts: int = 0
    last_state: dict[str, Any] | None = None  # the previous instance's ``terminated``
    backoff: float = 0.0  # the next back-off; 0: the next restart is at once
    restart_at: float | None = None  # monotonic time of a restart after a back-off
    started_mono: float = 0.0
    exits: list[float] = field(default_factory=list)  # when each instance was seen exited

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def previous_log(self) -> Path:
        return self.log.with_suffix(".previous.log")

    def exit_code(self) -> int | None:
        if self.popen is None:
            return None
        code = self.popen.poll()
        if code is not None and not self.finished_at:
            self.finished_at, self.ready = now(), False
            self.exits.append(time.monotonic())
        return code

    def terminated(self) -> dict[str, Any]:
        """The ``terminated`` state of the instance that exited."""
        code = self.exit_code()
        assert code is not None
        return {
            "exitCode": code if code >= 0 else 128 - code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "containerID": f"process://{self.pid}",
        }

    def back_off(self, pod: str) -> bool:
        """The instance exited and must be restarted: True to restart now; else wait with
        ``CrashLoopBackOff`` for the back-off (doubled each time, as a kubelet does)."""
        if self.restart_at is not None:
            return time.monotonic() >= self.restart_at
        if time.monotonic() - self.started_mono >= BACKOFF_RESET_S:
            self.backoff = 0.0
        if not self.backoff:
            self.backoff = BACKOFF_S
            return True
        self.restart_at = time.monotonic() + self.backoff
        self.waiting = (
            "CrashLoopBackOff",
            f"back-off {self.backoff:.0f}s restarting failed container={self.name} pod={pod}",
        )
        self.backoff = min(2 * self.backoff, MAX_BACKOFF_S)
        return False

    def retire(self) -> None:
        """Before a restart: the exited instance becomes ``lastState``, its log the previous."""
        self.last_state = {"terminated": self.terminated()}
        self.restarts += 1
        self.log.replace(self.previous_log)
        self.popen, self.started_at, self.finished_at = None, "", ""
        self.restart_at, self.ready, self.probe = None, False, None

    def status(self) -> dict[str, Any]:
        base = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "restartCount": self.restarts,
            "ready": self.ready,
            "started": self.popen is not None and self.exit_code() is None,
        }
        code = self.exit_code()
        last = self.last_state
        if self.popen is None:
            reason, message = self.waiting
            state: dict[str, Any] = {"waiting": {"reason": reason, "message": message}}
        elif code is None:
            state = {"running": {"startedAt": self.started_at}}
        elif self.restart_at is not None:  # backing off: the exited instance is the last one
            reason, message = self.waiting
            state, last = (
                {"waiting": {"reason": reason, "message": message}},
                {"terminated": self.terminated()},
            )
        else:
            state = {"terminated": self.terminated()}
        found = {**base, "containerID": f"process://{self.pid}", "state": state}
        return {**found, "lastState": last} if last else found

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen is not None else 0
