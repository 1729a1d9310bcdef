"""What a task reads of its environment, and what the mode checks read of a task.

``TaskEnvironment`` makes ``FunctionTask``s through the plugin registry (environment ->
registry -> base), and a task reads its environment's settings back. The modules below name
the classes above them by these protocols only, so the imports run one way.
"""

from __future__ import annotations

from typing import Any, Protocol

from flyray.config.image import Image
from flyray.config.pod_template import PodTemplate
from flyray.config.policies import CacheRequest, ReusePolicy
from flyray.config.resources import Resources
from flyray.config.secrets import Secret

__all__ = ["EnvironmentSettings", "TaskSettings"]


class EnvironmentSettings(Protocol):
    """A ``TaskEnvironment`` as its tasks, and the code that reads ``task.env``, see it."""

    name: str
    secrets: list[Secret]
    env_vars: dict[str, str] | None
    resources: Resources | None
    image: str | Image | None
    pod_template: str | PodTemplate | None
    service_account: str | None
    interruptible: bool
    cache: CacheRequest
    reusable: ReusePolicy | None
    plugin_config: Any
    queue: str | None
    _task_type: type  # the task class the plugin registry gave for its plugin_config

    @property
    def dns_name(self) -> str: ...

    def clone_with(self, name: str, **changes: Any) -> EnvironmentSettings: ...


class TaskSettings(Protocol):
    """A ``FunctionTask`` as the checks of what a mode honours see it: its settings."""

    env: EnvironmentSettings
    pod_template: str | PodTemplate | None
    interruptible: bool | None
    cache: Any
    queue: str | None
    report: bool
    triggers: Any
    links: Any

    @property
    def name(self) -> str: ...

    @property
    def service_account(self) -> str | None: ...

    @property
    def effective_pod_template(self) -> PodTemplate | None: ...

    @property
    def plugin_config(self) -> Any: ...
