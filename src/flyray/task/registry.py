"""Plugin registry: a ``plugin_config`` type maps to the task class that runs it.

Third-party plugins register in code with ``register_plugin`` or by naming a module that does
so in the ``flyray.plugins`` entry-point group; entry points load only when a lookup misses.
"""

from __future__ import annotations

from flyray.errors import PluginNotFoundError
from flyray.task.base import FunctionTask

__all__ = ["ENTRY_POINT_GROUP", "register_plugin", "task_type_for"]

ENTRY_POINT_GROUP = "flyray.plugins"

_registry: dict[type, type[FunctionTask]] = {}
_entry_points_loaded = False


def register_plugin(config_type: type, task_type: type[FunctionTask]) -> None:
    """Run tasks whose environment has a ``config_type`` plugin_config as ``task_type``."""
    if not (isinstance(task_type, type) and issubclass(task_type, FunctionTask)):
        raise TypeError(f"task_type must be a FunctionTask subclass, got {task_type!r}")
    _registry[config_type] = task_type


def task_type_for(plugin_config: object, *, field: str = "plugin_config") -> type[FunctionTask]:
    """The task class for a plugin_config (``FunctionTask`` for None)."""
    if plugin_config is None:
        return FunctionTask
    found = _lookup(type(plugin_config))
    if found is None and _load_entry_points():
        found = _lookup(type(plugin_config))
    if found is None:
        known = ", ".join(sorted(t.__name__ for t in _registry)) or "none"
        raise PluginNotFoundError(
            field,
            type(plugin_config).__name__,
            f"has no registered task plugin (registered config types: {known}); register one "
            f"with flyray.register_plugin(ConfigType, TaskClass) or the {ENTRY_POINT_GROUP!r} "
            "entry-point group",
        )
    return found


def _lookup(config_type: type) -> type[FunctionTask] | None:
    for klass in config_type.__mro__:
        if klass in _registry:
            return _registry[klass]
    return None


def _load_entry_points() -> bool:
    """Import every module named in the entry-point group once; True if this call loaded them."""
    from importlib.metadata import entry_points  # slow to import; needed only on a miss

    global _entry_points_loaded
    if _entry_points_loaded:
        return False
    _entry_points_loaded = True
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        entry_point.load()
    return True
