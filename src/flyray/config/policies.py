"""How a task is retried, timed out, cached and reused: Flyte's policy objects, checked here.

``RetryStrategy``, ``Backoff``, ``Timeout``, ``ReusePolicy`` and ``Cache`` take Flyte's
parameters and defaults; each checks itself when constructed and names the field it refuses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from flyray.errors import ConfigError

__all__ = [
    "Backoff",
    "Cache",
    "CacheRequest",
    "RetryStrategy",
    "ReusePolicy",
    "Timeout",
    "TimeoutType",
    "check_cache",
    "max_queued_seconds",
    "retry_count",
    "runtime_bounds",
]


@dataclass(frozen=True)
class Backoff:
    """The delay before the n-th retry: ``min(base * factor**n, cap)``."""

    base: timedelta
    factor: float = 1.0
    cap: timedelta | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.base, timedelta) or self.base < timedelta(0):
            raise ConfigError("Backoff.base", self.base, "must be a timedelta >= 0")
        if (
            isinstance(self.factor, bool)
            or not isinstance(self.factor, (int, float))
            or not math.isfinite(self.factor)
            or self.factor < 1.0
        ):
            raise ConfigError("Backoff.factor", self.factor, "must be a finite number >= 1.0")
        if self.cap is not None and (
            not isinstance(self.cap, timedelta) or self.cap < timedelta(0)
        ):
            raise ConfigError("Backoff.cap", self.cap, "must be a timedelta >= 0")
        if self.factor > 1.0 and self.cap is None:
            raise ConfigError(
                "Backoff.cap", None, "is required when factor > 1.0 (to bound the delay)"
            )

    def compute_delay(self, n: int) -> timedelta:
        """The delay before retry ``n`` (0-indexed)."""
        try:
            delay = self.base * (self.factor**n)
        except OverflowError:
            return self.cap if self.cap is not None else timedelta.max
        return min(delay, self.cap) if self.cap is not None else delay


@dataclass
class RetryStrategy:
    """``count`` user retries, optionally paced by a ``Backoff``."""

    count: int
    backoff: Backoff | None = None

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ConfigError("RetryStrategy.count", self.count, "must be an integer >= 0")
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise ConfigError("RetryStrategy.backoff", self.backoff, "must be a flyray.Backoff")


def retry_count(field_name: str, retries: object) -> RetryStrategy:
    """``retries`` as a RetryStrategy: an int count or a RetryStrategy."""
    if isinstance(retries, RetryStrategy):
        return retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(field_name, retries, "must be an integer >= 0 or a RetryStrategy")
    return RetryStrategy(count=retries)


@dataclass
class Timeout:
    """Time bounds of a task; ``None`` or ``0`` means unlimited (Flyte's semantics).

    ``max_runtime`` bounds each attempt, ``deadline`` all attempts together; ``max_queued_time``
    bounds the wait for a cluster (on KubeRay: the RayJob's pre-running deadline).
    """

    max_runtime: timedelta | int | None = None
    max_queued_time: timedelta | int | None = None
    deadline: timedelta | int | None = None

    def __post_init__(self) -> None:
        for name in ("max_runtime", "max_queued_time", "deadline"):
            _seconds(f"Timeout.{name}", getattr(self, name))


TimeoutType = Timeout | int | timedelta


def runtime_bounds(field_name: str, timeout: object) -> tuple[float | None, float | None]:
    """(per-attempt ``max_runtime``, all-attempts ``deadline``) in seconds; None: unlimited.

    A bare number or timedelta is ``max_runtime``, as in Flyte.
    """
    if isinstance(timeout, Timeout):
        return (
            _seconds(f"{field_name}.max_runtime", timeout.max_runtime),
            _seconds(f"{field_name}.deadline", timeout.deadline),
        )
    return (None if timeout is None else _seconds(field_name, timeout)), None


def max_queued_seconds(field_name: str, timeout: object) -> float | None:
    """How long a run may wait for its cluster, in seconds, or None for unlimited."""
    if not isinstance(timeout, Timeout):
        return None
    return _seconds(f"{field_name}.max_queued_time", timeout.max_queued_time)


def _seconds(field_name: str, value: object) -> float | None:
    """A duration in seconds; None or 0 mean unlimited."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ConfigError(
            field_name, value, "must be seconds >= 0, a timedelta or a flyray.Timeout (0: none)"
        )
    return float(seconds) or None


@dataclass
class ReusePolicy:
    """Keep the task's environment warm between runs (for Ray: one shared RayCluster).

    ``replicas`` is a count or a ``(min, max)`` range; ``idle_ttl`` (>= 30 s) is how long the
    environment may stay unused before it is shut down.
    """

    replicas: int | tuple[int, int] = 2
    idle_ttl: int | timedelta = 30
    concurrency: int = 1
    scaledown_ttl: int | timedelta = 30
    scope: Literal["global", "run"] = "global"

    def __post_init__(self) -> None:
        if self.scope not in ("global", "run"):
            raise ConfigError("ReusePolicy.scope", self.scope, "must be 'global' or 'run'")
        replicas = self.replicas
        if isinstance(replicas, int) and not isinstance(replicas, bool):
            replicas = (replicas, replicas)
        if not (
            isinstance(replicas, tuple)
            and len(replicas) == 2
            and all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in replicas)
        ):
            raise ConfigError(
                "ReusePolicy.replicas", self.replicas, "must be an int >= 0 or a (min, max) tuple"
            )
        if replicas[0] > replicas[1]:
            raise ConfigError("ReusePolicy.replicas", self.replicas, "must have min <= max")
        self.replicas = replicas
        if (
            isinstance(self.concurrency, bool)
            or not isinstance(self.concurrency, int)
            or self.concurrency < 1
        ):
            raise ConfigError("ReusePolicy.concurrency", self.concurrency, "must be an int >= 1")
        self.idle_ttl = _ttl("ReusePolicy.idle_ttl", self.idle_ttl)
        self.scaledown_ttl = _ttl("ReusePolicy.scaledown_ttl", self.scaledown_ttl)

    @property
    def min_replicas(self) -> int:
        """The smallest number of replicas."""
        return self.replicas[0]

    @property
    def max_replicas(self) -> int:
        """The largest number of replicas."""
        return self.replicas[1]


def _ttl(field_name: str, value: object) -> timedelta:
    if isinstance(value, int) and not isinstance(value, bool):
        value = timedelta(seconds=value)
    if not isinstance(value, timedelta) or value.total_seconds() < 30:
        raise ConfigError(field_name, value, "must be at least 30 seconds (an int or timedelta)")
    return value


CacheBehavior = Literal["auto", "override", "disable"]


@dataclass
class Cache:
    """Flyte's result cache; flyray does not cache results, so anything but 'disable' warns."""

    behavior: CacheBehavior
    version_override: str | None = None
    serialize: bool = False
    ignored_inputs: tuple[str, ...] | str = field(default_factory=tuple)
    salt: str = ""
    policies: object = None
    max_age: timedelta | int | None = None

    def __post_init__(self) -> None:
        if self.behavior not in ("auto", "override", "disable"):
            raise ConfigError(
                "Cache.behavior", self.behavior, "must be 'auto', 'override' or 'disable'"
            )


CacheRequest = CacheBehavior | Cache


def check_cache(field_name: str, cache: object) -> CacheRequest:
    """A cache request: 'auto', 'override', 'disable' or a ``Cache``."""
    if not (isinstance(cache, Cache) or cache in ("auto", "override", "disable")):
        raise ConfigError(
            field_name, cache, "must be 'auto', 'override', 'disable' or a flyray.Cache"
        )
    return cache  # type: ignore[return-value]
