"""A child process in its own process group, logging to a file, stopped by group.

Each is also killed by the kernel when the thread that started it ends (``PR_SET_PDEATHSIG``):
a component never outlives a session that was SIGKILLed, even before its watchdog acts.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from pathlib import Path

__all__ = ["ManagedProcess"]

STOP_TIMEOUT_S = 15.0
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: ask for SIGKILL when the parent thread ends."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """One child process in a new session (its own process group), logging to a file."""

    def __init__(
        self, name: str, argv: list[str], log: Path, *, env: dict[str, str] | None = None
    ) -> None:
        """Start ``argv``; ``env``: variables set on top of this process's environment."""
        self.name, self.argv, self.log = name, argv, log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
                env={**os.environ, **env} if env else None,
            )
        self._stopped = False

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the process group, wait, then SIGKILL it (idempotent)."""
        if self._stopped:  # its group id may belong to someone else by now
            return
        self._stopped = True
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
                # the leader is gone: make sure nothing else of its group lingers
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                return
            except subprocess.TimeoutExpired:
                continue
