"""``TaskEnvironment``: a named place for tasks, with their image, resources and plugin."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, overload

from flyray.config.names import check_env_name, dns1123_name
from flyray.config.resources import Resources
from flyray.config.secrets import Secret, normalise_secrets
from flyray.errors import ConfigError
from flyray.task.base import FunctionTask
from flyray.task.registry import task_type_for

__all__ = ["TaskEnvironment"]

_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class TaskEnvironment:
    """Tasks that share an image, resources, env vars and a plugin (e.g. a Ray cluster)."""

    name: str
    plugin_config: Any = None
    image: str | None = None
    resources: Resources | None = None
    env_vars: dict[str, str] | None = None
    description: str | None = None
    secrets: Secret | str | list[Secret | str] | None = None
    tasks: dict[str, FunctionTask] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        check_env_name("TaskEnvironment.name", self.name)
        if self.image is not None and (not isinstance(self.image, str) or not self.image.strip()):
            raise ConfigError("TaskEnvironment.image", self.image, "must be a non-empty string")
        if self.resources is not None and not isinstance(self.resources, Resources):
            raise ConfigError(
                "TaskEnvironment.resources", self.resources, "must be a flyray.Resources"
            )
        _check_env_vars("TaskEnvironment.env_vars", self.env_vars)
        self.secrets = normalise_secrets("TaskEnvironment.secrets", self.secrets)
        self._task_type = task_type_for(self.plugin_config, field="TaskEnvironment.plugin_config")

    @property
    def dns_name(self) -> str:
        """The name as a DNS-1123 label, for Kubernetes objects (``ray_env`` -> ``ray-env``)."""
        return dns1123_name(self.name)

    @overload
    def task(self, _func: Callable[..., Any]) -> FunctionTask: ...

    @overload
    def task(
        self,
        _func: None = None,
        *,
        name: str | None = None,
        retries: int = 0,
        timeout: float | timedelta | None = None,
    ) -> Callable[[Callable[..., Any]], FunctionTask]: ...

    def task(
        self,
        _func: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        retries: int = 0,
        timeout: float | timedelta | None = None,
    ) -> Any:
        """Decorator, bare (``@env.task``) or with options (``@env.task(retries=2)``)."""

        def decorate(func: Callable[..., Any]) -> FunctionTask:
            task = self._task_type(func, env=self, name=name, retries=retries, timeout=timeout)
            self.tasks[task.short_name] = task
            return task

        return decorate if _func is None else decorate(_func)


def _check_env_vars(field_name: str, env_vars: object) -> None:
    if env_vars is None:
        return
    if not isinstance(env_vars, dict):
        raise ConfigError(field_name, env_vars, "must be a dict of str to str")
    for key, value in env_vars.items():
        if not isinstance(key, str) or not _ENV_VAR.match(key):
            raise ConfigError(f"{field_name}[{key!r}]", key, "must be a valid variable name")
        if not isinstance(value, str):
            raise ConfigError(f"{field_name}[{key!r}]", value, "must be a string")
