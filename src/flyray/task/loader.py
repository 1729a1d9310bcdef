"""Find tasks in a Python file or an importable module, as the CLI and entrypoint need."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from flyray.errors import TaskLoadError
from flyray.task.base import FunctionTask

__all__ = ["load_module", "load_task", "tasks_in"]


def load_module(target: str) -> ModuleType:
    """Import ``target``: a path to a ``.py`` file, or a dotted module name."""
    path = Path(target)
    if target.endswith(".py") or path.is_file():
        return _load_file(path)
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        raise TaskLoadError(
            "FILE", target, f"is neither a .py file nor an importable module ({exc})"
        ) from exc


def tasks_in(module: ModuleType) -> dict[str, FunctionTask]:
    """Every task defined at the top level of a module, by attribute name."""
    return {name: obj for name, obj in vars(module).items() if isinstance(obj, FunctionTask)}


def load_task(target: str, task_name: str) -> FunctionTask:
    """The task ``task_name`` of the file or module ``target``."""
    module = load_module(target)
    tasks = tasks_in(module)
    if task_name not in tasks:
        known = ", ".join(sorted(tasks)) or "none"
        raise TaskLoadError("TASK", task_name, f"is not a task in {target} (tasks there: {known})")
    return tasks[task_name]


def _load_file(path: Path) -> ModuleType:
    """Import a file as a module named after it, with its folder on sys.path for siblings."""
    if not path.is_file():
        raise TaskLoadError("FILE", str(path), "does not exist")
    path = path.resolve()
    name = path.stem
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TaskLoadError("FILE", str(path), "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
