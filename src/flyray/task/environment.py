"""``TaskEnvironment``: a named place for tasks, with their image, resources and plugin.

It takes Flyte's parameters, in Flyte's order and with Flyte's defaults, so a Flyte program
runs with only its imports changed; what a mode cannot honour is named in a warning when a
task runs there (``flyray.task.inert``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from flyray.config.image import Image, as_image
from flyray.config.names import check_env_name, check_env_vars, dns1123_name
from flyray.config.pod_template import PodTemplate, check_pod_template
from flyray.config.policies import (
    CacheRequest,
    RetryStrategy,
    ReusePolicy,
    TimeoutType,
    check_cache,
)
from flyray.config.resources import Resources
from flyray.config.secrets import Secret, normalise_secrets
from flyray.errors import ConfigError
from flyray.task.base import MAX_INLINE_IO_BYTES, FunctionTask
from flyray.task.registry import task_type_for

__all__ = ["TaskEnvironment"]


@dataclass
class TaskEnvironment:
    """Tasks that share an image, resources, env vars, secrets and a plugin (a Ray cluster)."""

    name: str
    depends_on: list[TaskEnvironment] = field(default_factory=list)
    pod_template: str | PodTemplate | None = None
    description: str | None = None
    secrets: Secret | str | list[Secret | str] | None = None
    env_vars: dict[str, str] | None = None
    resources: Resources | None = None
    interruptible: bool = False
    image: str | Image | None = "auto"
    include: tuple[str, ...] = field(default_factory=tuple)
    service_account: str | None = None
    cache: CacheRequest = "disable"
    reusable: ReusePolicy | None = None
    plugin_config: Any = None
    queue: str | None = None
    tasks: dict[str, FunctionTask] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        check_env_name("TaskEnvironment.name", self.name)
        self.image = as_image("TaskEnvironment.image", self.image)
        if self.resources is not None and not isinstance(self.resources, Resources):
            raise ConfigError(
                "TaskEnvironment.resources", self.resources, "must be a flyray.Resources"
            )
        _check_env_vars("TaskEnvironment.env_vars", self.env_vars)
        self.secrets = normalise_secrets("TaskEnvironment.secrets", self.secrets)
        self.depends_on = _check_depends_on(self.depends_on)
        self.pod_template = check_pod_template("TaskEnvironment.pod_template", self.pod_template)
        self.include = _check_include(self.include)
        _check_optional_text("TaskEnvironment.service_account", self.service_account)
        _check_optional_text("TaskEnvironment.queue", self.queue)
        _check_optional_text("TaskEnvironment.description", self.description)
        if not isinstance(self.interruptible, bool):
            raise ConfigError("TaskEnvironment.interruptible", self.interruptible, "must be a bool")
        check_cache("TaskEnvironment.cache", self.cache)
        if self.reusable is not None and not isinstance(self.reusable, ReusePolicy):
            raise ConfigError(
                "TaskEnvironment.reusable", self.reusable, "must be a flyray.ReusePolicy or None"
            )
        self._task_type = task_type_for(self.plugin_config, field="TaskEnvironment.plugin_config")
        if self.reusable is not None and not self._task_type.supports_reuse_policy:
            raise ConfigError(
                "TaskEnvironment.reusable",
                self.reusable,
                f"cannot go with a plugin_config of type {type(self.plugin_config).__name__} "
                "(its tasks cannot be reused)",
            )

    @property
    def dns_name(self) -> str:
        """The name as a DNS-1123 label, for Kubernetes objects (``ray_env`` -> ``ray-env``)."""
        return dns1123_name(self.name)

    def clone_with(self, name: str, **changes: Any) -> TaskEnvironment:
        """A new environment like this one, named ``name``, with ``changes`` applied."""
        unknown = sorted(set(changes) - {f for f in self.__dataclass_fields__ if f != "tasks"})
        if unknown:
            raise ConfigError("TaskEnvironment.clone_with", unknown, "are not environment fields")
        return replace(self, name=name, **changes)

    def add_dependency(self, *env: TaskEnvironment) -> None:
        """Declare environments this one depends on (Flyte deploys them together)."""
        self.depends_on = _check_depends_on([*self.depends_on, *env])

    def task(
        self,
        _func: Callable[..., Any] | None = None,
        *,
        short_name: str | None = None,
        cache: CacheRequest | None = None,
        retries: int | RetryStrategy = 0,
        timeout: TimeoutType = 0,
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
    ) -> Any:
        """Decorator, bare (``@env.task``) or with Flyte's options (``@env.task(retries=2)``).

        ``retries`` is a count or a ``RetryStrategy``; ``timeout`` is seconds, a timedelta or a
        ``Timeout`` (``0``, the default, means none). Options without an effect in the mode a
        task runs in are named in a warning then.
        """
        options = {
            "short_name": short_name,
            "cache": cache,
            "retries": retries,
            "timeout": timeout,
            "docs": docs,
            "pod_template": pod_template,
            "report": report,
            "interruptible": interruptible,
            "max_inline_io_bytes": max_inline_io_bytes,
            "queue": queue,
            "service_account": service_account,
            "triggers": triggers,
            "links": links,
            "task_resolver": task_resolver,
            "entrypoint": entrypoint,
            "produces_artifacts": produces_artifacts,
        }

        def decorate(func: Callable[..., Any]) -> FunctionTask:
            task = self._task_type(func, env=self, **options)
            self.tasks[func.__name__] = task
            return task

        return decorate if _func is None else decorate(_func)


def _check_env_vars(field_name: str, env_vars: object) -> None:
    if env_vars is None:
        return
    if not isinstance(env_vars, dict):
        raise ConfigError(field_name, env_vars, "must be a dict of str to str")
    check_env_vars(field_name, env_vars)


def _check_depends_on(depends_on: object) -> list[TaskEnvironment]:
    return _items(
        "TaskEnvironment.depends_on",
        depends_on,
        TaskEnvironment,
        "must be a list of TaskEnvironment",
        "must be a TaskEnvironment",
    )


def _check_include(include: object) -> tuple[str, ...]:
    return tuple(
        _items(
            "TaskEnvironment.include",
            include,
            str,
            "must be a sequence of paths, not a bare string",
            "must be a str path",
        )
    )


def _items(field_name: str, values: object, kind: type, rule: str, item_rule: str) -> list[Any]:
    """``values`` as a list when it is a list or tuple of ``kind``; an error names the index."""
    if not isinstance(values, (list, tuple)):
        raise ConfigError(field_name, values, rule)
    for i, value in enumerate(values):
        if not isinstance(value, kind):
            raise ConfigError(f"{field_name}[{i}]", value, item_rule)
    return list(values)


def _check_optional_text(field_name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(field_name, value, "must be a string or None")
