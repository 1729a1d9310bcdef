"""Where the sandbox keeps its state, and what ``flyray sandbox`` reads from there.

The folder (``FLYRAY_SANDBOX_DIR``, else ``~/.cache/flyray/sandbox``) holds ``serve.pid`` (the
supervisor: pid and start time), ``serve.log`` (its progress and errors), ``state.json`` once
everything is ready (what a user needs to reach it), ``kubeconfig`` and ``controlplane/``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from flyray.executors.localcluster.procs import is_running, start_time

__all__ = ["SandboxState", "Supervisor", "sandbox_dir"]

STATE_FILE, PID_FILE, LOG_FILE = "state.json", "serve.pid", "serve.log"
READY_LINE = "sandbox: ready"  # the supervisor's last line once it serves


def sandbox_dir() -> Path:
    """The sandbox's folder: ``FLYRAY_SANDBOX_DIR`` or ``~/.cache/flyray/sandbox``."""
    configured = os.environ.get("FLYRAY_SANDBOX_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "flyray" / "sandbox"


@dataclass(frozen=True)
class SandboxState:
    """A ready sandbox: how to reach it and where runs keep their files."""

    kubeconfig: str
    namespace: str
    run_store: str
    started_at: float

    def write(self, folder: Path) -> None:
        tmp = folder / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(folder / STATE_FILE)

    @classmethod
    def read(cls, folder: Path) -> SandboxState | None:
        try:
            return cls(**json.loads((folder / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def exports(self) -> list[str]:
        """The shell lines that point ``flyray run --mode kuberay`` at this sandbox."""
        return [
            f"export KUBECONFIG={self.kubeconfig}",
            f"export FLYRAY_RUN_STORE={self.run_store}",
            "export FLYRAY_SHARED_RUN_STORE=1",
        ]


@dataclass(frozen=True)
class Supervisor:
    """The ``python -m flyray.sandbox.serve`` process that owns a sandbox."""

    pid: int
    start: int | None

    def alive(self) -> bool:
        return self.start is not None and is_running(self.pid, self.start)

    def write(self, folder: Path) -> None:
        (folder / PID_FILE).write_text(json.dumps({"pid": self.pid, "start": self.start}))

    @classmethod
    def of(cls, pid: int) -> Supervisor:
        return cls(pid, start_time(pid))

    @classmethod
    def read(cls, folder: Path) -> Supervisor | None:
        try:
            return cls(**json.loads((folder / PID_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None
