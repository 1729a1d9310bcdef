"""The executor interface: every mode submits, waits with progress, cancels and returns."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from flyray.store.record import RunStatus
from flyray.task.base import FunctionTask

__all__ = ["Executor", "LogCallback", "ProgressCallback", "RunOptions", "new_run_id"]

ProgressCallback = Callable[[str], None]
LogCallback = Callable[[str], None]  # receives job log text as it arrives


def new_run_id() -> str:
    """A short random run id that is also a valid DNS-1035 label ("r" + 10 hex digits)."""
    return "r" + os.urandom(5).hex()


@dataclass(frozen=True)
class RunOptions:
    """What one run adds to its task: env vars, and for Kubernetes labels, annotations, SA.

    ``env_vars`` win over the task's own; ``labels`` and ``annotations`` go on the objects a
    kuberay run creates, ``service_account`` on its pods (flyray's own labels stay).
    """

    env_vars: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    service_account: str | None = None


class Executor(ABC):
    """Runs tasks in one mode; ``flyray.run`` and the CLI pick an executor, nothing more."""

    mode: ClassVar[str]
    options: ClassVar[frozenset[str]] = frozenset()  # run options it takes besides settings

    @abstractmethod
    def submit(
        self,
        task: FunctionTask,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        run_id: str,
        options: RunOptions | None = None,
    ) -> None:
        """Start (or queue) a run of ``task`` under ``run_id``, with the run's ``options``."""

    @abstractmethod
    def wait(self, run_id: str, *, on_progress: ProgressCallback | None = None) -> RunStatus:
        """Block until the run ends, reporting progress; returns its final status."""

    @abstractmethod
    def result(self, run_id: str) -> Any:
        """The task's return value; raises the task's error for a failed run."""

    @abstractmethod
    def cancel(self, run_id: str) -> None:
        """Stop the run and release what it holds."""

    def refresh(self, run_id: str) -> RunStatus:
        """The run's status now; modes that can detach ask the cluster (default: no change)."""
        raise NotImplementedError(f"{self.mode} mode runs never detach")

    def location(self, run_id: str) -> str:
        """Where the run can be looked at later ("" when nothing of it is kept)."""
        return ""
