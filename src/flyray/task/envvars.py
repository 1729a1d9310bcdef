"""Environment variables of local runs: set in this process for a call, then restored.

A local run sets its task's and its run's variables in ``os.environ``, which concurrent calls
share; plugins read the run's own from ``RUN_ENV_VARS`` (Ray's runtime env takes them).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from flyray.warn import FlyrayWarning

__all__ = ["RUN_ENV_VARS", "run_env_vars", "set_env_vars"]

RUN_ENV_VARS: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "run_env_vars", default=MappingProxyType({})
)  # the env vars of the run a local call belongs to, for plugins (Ray's runtime env)


@contextlib.contextmanager
def run_env_vars(values: Mapping[str, str] | None) -> Iterator[None]:
    """Add ``values`` to ``RUN_ENV_VARS`` for the duration of a local run."""
    token = RUN_ENV_VARS.set({**RUN_ENV_VARS.get(), **(values or {})})
    try:
        yield
    finally:
        RUN_ENV_VARS.reset(token)


_environ_lock = threading.Lock()
_environ_in_use: dict[str, list[str]] = {}  # variable -> the values active calls set
_environ_before: dict[str, str | None] = {}  # variable -> its value before those calls
_environ_mine: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "environ_mine", default=()
)  # what this call and the calls it runs inside set (a nested call may set other values)


@contextlib.contextmanager
def set_env_vars(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a local run, then restore them.

    ``os.environ`` is one per process: concurrent calls that set a variable differently are
    warned that they see each other's value.
    """
    with _environ_lock:
        mine = _environ_mine.get()
        clashes = sorted(
            key
            for key, value in values.items()
            if any(
                other != value and (key, other) not in mine
                for other in _environ_in_use.get(key, [])
            )
        )
        before = {key: os.environ.get(key) for key in values if key not in _environ_in_use}
        os.environ.update(values)  # first: a value the OS refuses leaves no bookkeeping behind
        _environ_before.update(before)
        for key, value in values.items():
            _environ_in_use.setdefault(key, []).append(value)
    if clashes:
        warnings.warn(
            f"concurrent local calls set {', '.join(clashes)} to different values; a process "
            "has one environment, so each call sees the value set last: run them one after "
            "the other, or in local-cluster mode",
            FlyrayWarning,
            stacklevel=4,
        )
    token = _environ_mine.set((*mine, *values.items()))
    try:
        yield
    finally:
        _environ_mine.reset(token)
        with _environ_lock:
            for key, value in values.items():
                _environ_in_use[key].remove(value)
                if _environ_in_use[key]:  # calls still running keep the value set last
                    os.environ[key] = _environ_in_use[key][-1]
                    continue
                del _environ_in_use[key]
                before = _environ_before.pop(key)
                if before is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = before
