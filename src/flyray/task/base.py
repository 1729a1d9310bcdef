"""``FunctionTask``: a Python function bound to a ``TaskEnvironment``, run as pre → fn → post."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from flyray._aio import run_sync
from flyray.config.pod_template import PodTemplate, check_pod_template
from flyray.config.policies import (
    RetryStrategy,
    check_cache,
    max_queued_seconds,
    retry_count,
    runtime_bounds,
)
from flyray.errors import ConfigError, NonRecoverableError, TaskTimeoutError, as_user_error
from flyray.task.envvars import run_env_vars, set_env_vars
from flyray.task.inert import warn_without_effect
from flyray.task.protocols import EnvironmentSettings

__all__ = ["MAX_INLINE_IO_BYTES", "FunctionTask"]

PhaseCallback = Callable[[str], None]
MAX_INLINE_IO_BYTES = 10 * 1024 * 1024  # Flyte's default limit for inline inputs and outputs


class FunctionTask:
    """A task: calling it runs it here; ``flyray.run`` runs it in any mode.

    Plugins subclass it and override ``pre`` (set up, e.g. connect to Ray), ``post`` (tear
    down) and ``custom_config`` (the cluster description a remote backend needs).
    """

    supports_reuse_policy: ClassVar[bool] = False

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        env: EnvironmentSettings,
        short_name: str | None = None,
        retries: int | RetryStrategy = 0,
        timeout: Any = 0,
        cache: Any = None,
        docs: Any = None,
        pod_template: str | PodTemplate | None = None,
        report: bool = False,
        interruptible: bool | None = None,
        max_inline_io_bytes: int = MAX_INLINE_IO_BYTES,
        queue: str | None = None,
        service_account: str | None = None,
        triggers: Any = (),
        links: Any = (),
        task_resolver: Any | None = None,
        entrypoint: bool = False,
        produces_artifacts: bool = False,
    ) -> None:
        if not callable(func):
            raise ConfigError("task", func, "must decorate a function")
        self.func = func
        self.env = env
        self.short_name = short_name if short_name is not None else func.__name__
        if not isinstance(self.short_name, str) or not self.short_name.strip():
            raise ConfigError("task.short_name", self.short_name, "must be a non-empty string")
        self.retry_strategy = retry_count("task.retries", retries)
        self.max_runtime, self.deadline = runtime_bounds("task.timeout", timeout)
        self.max_queued_time = max_queued_seconds("task.timeout", timeout)
        self._timeout_request = timeout
        self.cache = cache if cache is None else check_cache("task.cache", cache)
        self.docs = docs
        self.pod_template = check_pod_template("task.pod_template", pod_template)
        self.report = report
        self.interruptible = interruptible
        self.max_inline_io_bytes = max_inline_io_bytes
        self.queue = queue
        self._service_account = service_account
        self.triggers = triggers
        self.links = links
        self.task_resolver = task_resolver
        self.entrypoint = entrypoint
        self.produces_artifacts = produces_artifacts
        functools.update_wrapper(self, func)

    @property
    def retries(self) -> int:
        """How many times a failed attempt is retried."""
        return self.retry_strategy.count

    @property
    def timeout(self) -> float | None:
        """The whole run's time bound in seconds (the nearer of ``max_runtime`` and
        ``deadline``), or None: what a cluster enforces as the run's deadline."""
        bounds = [b for b in (self.max_runtime, self.deadline) if b is not None]
        return min(bounds) if bounds else None

    @property
    def service_account(self) -> str | None:
        """The Kubernetes service account of the task's pods: the task's, else the env's."""
        return self._service_account or self.env.service_account

    @property
    def effective_pod_template(self) -> PodTemplate | None:
        """The pod template the task's pods start from: the task's, else the environment's."""
        template = self.pod_template if self.pod_template is not None else self.env.pod_template
        return template if isinstance(template, PodTemplate) else None

    @property
    def reuses_cluster(self) -> bool:
        """Whether runs share one kept cluster (plugins that support reuse say so)."""
        return False

    def override(
        self,
        *,
        short_name: str | None = None,
        resources: Any = None,
        cache: Any = None,
        retries: int | RetryStrategy = 0,
        timeout: Any = None,
        reusable: Any = None,
        env_vars: dict[str, str] | None = None,
        secrets: Any = None,
        service_account: str | None = None,
        max_inline_io_bytes: int | None = None,
        pod_template: str | PodTemplate | None = None,
        queue: str | None = None,
        interruptible: bool | None = None,
        entrypoint: bool | None = None,
        produces_artifacts: bool | None = None,
        links: Any = (),
        plugin_config: Any = None,
        **kwargs: Any,
    ) -> FunctionTask:
        """A copy of this task with Flyte's ``override`` options applied (the original is kept).

        ``resources``, ``env_vars``, ``secrets``, ``plugin_config`` and ``reusable`` (``"off"``
        to stop reuse) change a copy of the environment; the others change the task. Options
        left at their defaults keep the task's values.
        """
        if kwargs:
            raise ConfigError("task.override", sorted(kwargs), "are not options of override()")
        given = {
            "resources": resources,
            "env_vars": env_vars,
            "secrets": secrets,
            "plugin_config": plugin_config,
            "reusable": reusable,
        }
        env_changes = {key: value for key, value in given.items() if value is not None}
        sized = sorted({"resources", "env_vars", "secrets"} & set(env_changes))
        if self.env.reusable is not None and sized and reusable != "off":
            raise ConfigError(
                "task.override",
                sized,
                "cannot change a reused environment: pass reusable='off' in the same call "
                "(as Flyte requires)",
            )
        if env_changes.get("reusable") == "off":
            env_changes["reusable"] = None
        task_changes = {
            key: value
            for key, value in {
                "short_name": short_name,
                "cache": cache,
                "timeout": timeout,
                "service_account": service_account,
                "max_inline_io_bytes": max_inline_io_bytes,
                "pod_template": pod_template,
                "queue": queue,
                "interruptible": interruptible,
                "entrypoint": entrypoint,
                "produces_artifacts": produces_artifacts,
            }.items()
            if value is not None
        }
        if retries != 0:
            task_changes["retries"] = retries
        if links:
            task_changes["links"] = links
        env = self.env.clone_with(self.env.name, **env_changes) if env_changes else self.env
        # A new plugin_config may need another task class (the plugin registry says which).
        task_type = env._task_type if env_changes else type(self)
        return task_type(self.func, env=env, **{**self._options(), **task_changes})

    def _options(self) -> dict[str, Any]:
        """The decorator options this task was made with, for ``override``."""
        return {
            "short_name": self.short_name,
            "retries": self.retry_strategy,
            "timeout": self._timeout_request,
            "cache": self.cache,
            "docs": self.docs,
            "pod_template": self.pod_template,
            "report": self.report,
            "interruptible": self.interruptible,
            "max_inline_io_bytes": self.max_inline_io_bytes,
            "queue": self.queue,
            "service_account": self._service_account,
            "triggers": self.triggers,
            "links": self.links,
            "task_resolver": self.task_resolver,
            "entrypoint": self.entrypoint,
            "produces_artifacts": self.produces_artifacts,
        }

    @property
    def name(self) -> str:
        """The task's full name, ``<environment>.<function>`` (``short_name`` never changes it)."""
        return f"{self.env.name}.{self.func.__name__}"

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
        """Run here, with the task's retries, timeout and env vars (the run's ``env_vars`` win).

        ``max_runtime`` bounds each attempt and ``deadline`` all of them together; a task that
        still fails after its retries raises its own error as a ``RuntimeUserError`` too.
        """
        warn_without_effect(self, "local")
        report = on_phase or (lambda phase: None)
        backoff = self.retry_strategy.backoff
        environ = {**(self.env.env_vars or {}), **(env_vars or {})}
        started = time.monotonic()
        failure: BaseException | None = None
        for attempt in range(self.retries + 1):
            try:
                seconds, why = self._time_left(started)
                with set_env_vars(environ), run_env_vars(env_vars):
                    return await self.run_once(
                        args, kwargs, on_phase=report, timeout=seconds, timeout_reason=why
                    )
            except (TaskTimeoutError, NonRecoverableError):
                raise  # like activeDeadlineSeconds on KubeRay: a timeout is not retried
            except Exception as exc:
                if attempt == self.retries:
                    failure = exc
                    break
                report(f"retrying (attempt {attempt + 2} of {self.retries + 1})")
                if backoff is not None:
                    import asyncio  # not at module level: it doubles `import flyray`

                    await asyncio.sleep(backoff.compute_delay(attempt).total_seconds())
        assert failure is not None
        raise as_user_error(failure)  # outside the except block: its own chain is kept

    def _time_left(self, started: float) -> tuple[float | None, str]:
        """This attempt's bound and what sets it: ``max_runtime``, or the ``deadline`` left."""
        runtime = (self.max_runtime, f"its timeout of {self.max_runtime or 0:g} s")
        if self.deadline is None:
            return runtime if self.max_runtime is not None else (None, "")
        left = self.deadline - (time.monotonic() - started)
        why = f"its deadline of {self.deadline:g} s (all attempts together)"
        if left <= 0:
            raise TaskTimeoutError(f"task {self.name!r} passed {why}")
        if self.max_runtime is not None and self.max_runtime < left:
            return runtime
        return left, why

    async def run_once(
        self,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        on_phase: PhaseCallback | None = None,
        timeout: float | None = None,
        timeout_reason: str = "",
    ) -> Any:
        """One attempt: pre() -> function -> post(); post() also runs when the function fails.

        ``timeout`` bounds the function alone (never ``pre``/``post``); ``timeout_reason``
        says what set it, for the error.
        """
        from flyray.task.deadlines import deadline, shielded

        report = on_phase or (lambda phase: None)
        report("pre")
        with shielded():
            await self.pre(*args, **kwargs)
        try:
            report("running")
            async with deadline(timeout, self.name, timeout_reason):
                result = await self.execute(*args, **kwargs)
        except BaseException:
            with shielded():
                await self.post(None)
            raise
        report("post")
        with shielded():
            return await self.post(result)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run locally: returns a coroutine for ``async def`` tasks, the result otherwise."""
        coro = self.run_locally(args, kwargs, on_phase=None)
        return coro if self.is_async else run_sync(coro)

    async def aio(self, *args: Any, **kwargs: Any) -> Any:
        """Run locally and await the result, sync tasks included (Flyte's ``task.aio``).

        A sync task runs in a worker thread, so the caller's event loop (e.g. other calls
        gathered with it) keeps going.
        """
        import asyncio

        if self.is_async:
            return await self.run_locally(args, kwargs, on_phase=None)
        return await asyncio.to_thread(run_sync, self.run_locally(args, kwargs, on_phase=None))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
