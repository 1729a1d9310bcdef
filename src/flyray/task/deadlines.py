"""Local task timeouts: one SIGALRM timer serves every timed call on the main thread.

A call whose time is up gets a ``TaskTimeoutError``: raised at once inside it when it is the
code running (a blocking ``ray.get`` is interrupted), else delivered as a cancellation at its
next ``await``, so calls gathered with it carry on. Only the function is timed, never
``pre()``/``post()``, so Ray is never interrupted half started or half stopped. Off the main
thread (a sync task run through ``.aio``) a timeout cannot be enforced, and a warning says so.
"""

from __future__ import annotations

import contextlib
import contextvars
import signal
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from flyray.errors import TaskTimeoutError
from flyray.warn import FlyrayWarning

__all__ = ["deadline", "shielded"]


@dataclass(eq=False)
class _Timer:
    when: float
    task: Any  # the asyncio.Task of the timed call
    loop: Any
    error: TaskTimeoutError
    expired: bool = field(default=False)


_timers: list[_Timer] = []
_previous_handler: Any = None
_previous_due: float | None = None  # when the alarm set before ours is due
_SHIELDED: contextvars.ContextVar[bool] = contextvars.ContextVar("shielded", default=False)
_warned: set[str] = set()


@contextlib.asynccontextmanager
async def deadline(seconds: float | None, task_name: str, reason: str = "") -> AsyncIterator[None]:
    """Time the block: ``TaskTimeoutError`` when it runs longer than ``seconds``.

    ``reason`` names the limit in the error (default: "its timeout of N s").
    """
    if seconds is None:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        if task_name not in _warned:
            _warned.add(task_name)
            warnings.warn(
                f"task {task_name!r}: its timeout of {seconds:g} s is not enforced here: a "
                "local run is timed on the main thread only (a sync task called with .aio or "
                "from async code runs in a worker thread)",
                FlyrayWarning,
                stacklevel=4,
            )
        yield
        return
    import asyncio

    reason = reason or f"its timeout of {seconds:g} s"
    message = f"task {task_name!r} did not finish within {reason}"
    timer = _Timer(
        time.monotonic() + seconds,
        asyncio.current_task(),
        asyncio.get_running_loop(),
        TaskTimeoutError(message),
    )
    _add(timer)
    try:
        yield
    except asyncio.CancelledError:
        if not timer.expired:
            raise
        uncancel = getattr(timer.task, "uncancel", None)  # Python 3.11+
        if uncancel is not None:
            uncancel()  # this cancellation was ours: an outer asyncio.timeout still works
        raise timer.error from None
    finally:
        _remove(timer)
    if timer.expired:  # the code caught the error (a broad except) and went on: not done
        raise timer.error


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Inside: an expired timer cancels at the next await instead of raising here (used for
    ``pre()``/``post()``, so Ray is never interrupted half started or half stopped)."""
    token = _SHIELDED.set(True)
    try:
        yield
    finally:
        _SHIELDED.reset(token)


def _add(timer: _Timer) -> None:
    global _previous_handler, _previous_due
    if not _timers:  # someone else's alarm (pytest-timeout, signal.alarm) is kept and served
        _previous_handler = signal.signal(signal.SIGALRM, _on_alarm)
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        _previous_due = time.monotonic() + remaining if remaining else None
    _timers.append(timer)
    _arm()


def _remove(timer: _Timer) -> None:
    if timer in _timers:
        _timers.remove(timer)
    if _timers:
        _arm()
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, _previous_handler or signal.SIG_DFL)
    if _previous_due is not None:
        signal.setitimer(signal.ITIMER_REAL, max(_previous_due - time.monotonic(), 1e-3))


def _arm() -> None:
    """Set the one timer to the earliest deadline still pending, ours or the previous one."""
    pending = [t.when for t in _timers if not t.expired]
    if _previous_due is not None:
        pending.append(_previous_due)
    if pending:
        signal.setitimer(signal.ITIMER_REAL, max(min(pending) - time.monotonic(), 1e-3))
    else:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _on_alarm(signum: int, frame: Any) -> None:
    import asyncio

    global _previous_due
    now = time.monotonic()
    interrupt = None
    for timer in _timers:
        if timer.expired or timer.when > now:
            continue
        timer.expired = True
        running = asyncio.current_task(timer.loop) is timer.task
        if running and not _SHIELDED.get():
            interrupt = timer.error  # its code is what runs now: stop it where it is
        else:
            timer.loop.call_soon_threadsafe(_cancel, timer)
    previous = None
    if _previous_due is not None and _previous_due <= now:
        _previous_due, previous = None, _previous_handler
    _arm()
    if callable(previous):
        previous(signum, frame)
    if interrupt is not None:
        raise interrupt


def _cancel(timer: _Timer) -> None:
    """Cancel a call whose time is up, unless it has left its timed block meanwhile."""
    if timer in _timers:
        timer.task.cancel()
