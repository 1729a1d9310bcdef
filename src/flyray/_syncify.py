"""Calls that are plain functions and also offer ``.aio``, as Flyte's API does."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Syncified"]

T = TypeVar("T")


class Syncified(Generic[T]):
    """``f(...)`` blocks; ``await f.aio(...)`` runs the same call in a worker thread.

    The thread keeps the event loop free while a run goes on; a task's timeout (SIGALRM) is
    then not enforced in local mode, as only the main thread receives signals.
    """

    def __init__(self, func: Callable[..., T]) -> None:
        self.func = func
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        return self.func(*args, **kwargs)

    async def aio(self, *args: Any, **kwargs: Any) -> T:
        """The call, awaited."""
        import asyncio

        return await asyncio.to_thread(self.func, *args, **kwargs)

    def __get__(self, obj: object, owner: type | None = None) -> Syncified[T]:
        return self if obj is None else Syncified(functools.partial(self.func, obj))
