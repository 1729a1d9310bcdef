"""The executor interface: every mode submits, waits, reports status and logs, cancels."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from flyray.store.record import RunStatus
from flyray.task.base import FunctionTask

__all__ = ["Executor", "LogCallback", "ProgressCallback", "RunOptions", "new_run_id"]

ProgressCallback = Callable[[str], None]
LogCallback = Callable[[str], None]  # receives job log text as it arrives
E = TypeVar("E", bound="Executor")


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
    """One mode's runs, behind the same methods in every mode (like httpx's transports).

    An executor is built from settings (and the mode's ``options``) and looked up by mode in
    ``executors.registry``; ``flyray.run`` and the CLI never branch on the mode. Built for the
    run store of an earlier run, it answers ``status``, ``logs`` and ``cancel`` for that run
    from its record (and its cluster, for a run that outlives flyray).
    """

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
        """Block until the run ends (or is detached), reporting progress; its status then."""

    @abstractmethod
    def status(self, run_id: str) -> RunStatus:
        """The run's status now; a run still going on a cluster is asked there first."""

    @abstractmethod
    def logs(self, run_id: str, *, follow: bool = False) -> Iterator[str]:
        """The run's job log as text chunks; ``follow`` goes on until the run has ended."""

    @abstractmethod
    def result(self, run_id: str) -> Any:
        """The task's return value; raises the task's error for a failed run."""

    @abstractmethod
    def cancel(self, run_id: str) -> str:
        """Stop the run and release what it holds; one line saying what was done."""

    @abstractmethod
    def cleanup(self) -> None:
        """Release what the executor itself holds (sessions, clients); runs are not touched."""

    def location(self, run_id: str) -> str:
        """Where the run can be looked at later ("" when nothing of it is kept)."""
        return ""

    def __enter__(self: E) -> E:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()
