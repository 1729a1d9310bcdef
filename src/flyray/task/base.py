"""``FunctionTask``: a Python function bound to a ``TaskEnvironment``, run as pre → fn → post."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flyray._aio import run_sync
from flyray.errors import ConfigError, TaskTimeoutError

if TYPE_CHECKING:
    from flyray.task.environment import TaskEnvironment

__all__ = ["FunctionTask"]

PhaseCallback = Callable[[str], None]


class FunctionTask:
    """A task: calling it runs it here; ``flyray.run`` runs it in any mode.

    Plugins subclass it and override ``pre`` (set up, e.g. connect to Ray), ``post`` (tear
    down) and ``custom_config`` (the cluster description a remote backend needs).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        env: TaskEnvironment,
        name: str | None = None,
        retries: int = 0,
        timeout: float | timedelta | None = None,
    ) -> None:
        if not callable(func):
            raise ConfigError("task", func, "must decorate a function")
        self.func = func
        self.env = env
        self.short_name = name if name is not None else func.__name__
        if not isinstance(self.short_name, str) or not self.short_name.isidentifier():
            raise ConfigError("task.name", self.short_name, "must be a Python identifier")
        self.retries = _check_retries(retries)
        self.timeout = _check_timeout(timeout)
        functools.update_wrapper(self, func)

    @property
    def name(self) -> str:
        """The task's full name, ``<environment>.<function>``."""
        return f"{self.env.name}.{self.short_name}"

    @property
    def plugin_config(self) -> Any:
        """The environment's plugin configuration, or None for plain tasks."""
        return self.env.plugin_config

    @property
    def is_async(self) -> bool:
        """Whether the wrapped function is ``async def``."""
        return inspect.iscoroutinefunction(self.func)

    async def pre(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Prepare the run (plugins connect to their backend here)."""
        return {}

    def describe_pre(self) -> str:
        """What ``pre`` is doing, for progress displays."""
        return "Preparing"

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function, awaiting it when it is a coroutine function."""
        result = self.func(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def post(self, return_vals: Any) -> Any:
        """Finish the run (plugins release what ``pre`` acquired); returns the result."""
        return return_vals

    def custom_config(self, sctx: Any = None) -> dict[str, Any] | None:
        """The plugin's backend description; None for a plain task."""
        return None

    async def run_locally(
        self,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        on_phase: PhaseCallback | None,
        env_vars: Mapping[str, str] | None = None,
    ) -> Any:
        """Run here, with the task's retries, timeout and env vars (the run's ``env_vars`` win)."""
        report = on_phase or (lambda phase: None)
        environ = {**(self.env.env_vars or {}), **(env_vars or {})}
        for attempt in range(self.retries + 1):
            try:
                with _environ(environ), _deadline(self.timeout, self.name):
                    return await self.run_once(args, kwargs, on_phase=report)
            except TaskTimeoutError:
                raise  # like activeDeadlineSeconds on KubeRay: a timeout is not retried
            except Exception:
                if attempt == self.retries:
                    raise
                report(f"retrying (attempt {attempt + 2} of {self.retries + 1})")
        raise AssertionError("unreachable")

    async def run_once(
        self,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        on_phase: PhaseCallback | None = None,
    ) -> Any:
        """One attempt: pre() -> function -> post(); post() also runs when the function fails."""
        report = on_phase or (lambda phase: None)
        report("pre")
        await self.pre(*args, **kwargs)
        report("running")
        try:
            result = await self.execute(*args, **kwargs)
        except BaseException:
            await self.post(None)
            raise
        report("post")
        return await self.post(result)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run locally: returns a coroutine for ``async def`` tasks, the result otherwise."""
        coro = self.run_locally(args, kwargs, on_phase=None)
        return coro if self.is_async else run_sync(coro)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _check_retries(retries: object) -> int:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError("task.retries", retries, "must be an integer >= 0")
    return retries


def _check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ConfigError("task.timeout", timeout, "must be a number of seconds > 0 or a timedelta")
    return float(seconds)


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a local run, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def _deadline(seconds: float | None, task_name: str) -> Iterator[None]:
    """Interrupt a local run after ``seconds`` (SIGALRM: enforced on the main thread only)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TaskTimeoutError(
            f"task {task_name!r} did not finish within its timeout of {seconds:g} s"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
