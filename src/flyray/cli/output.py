"""What the CLI prints: progress and errors on stderr, results on stdout."""

from __future__ import annotations

import json
import traceback
from typing import Any

from rich.console import Console

from flyray.task.base import FunctionTask

stderr = Console(stderr=True, highlight=False)


def format_result(result: Any) -> str:
    """A task's result as printed: JSON for lists and dicts when possible, else str()."""
    if isinstance(result, (dict, list)):
        try:
            return json.dumps(result, indent=2, sort_keys=True)
        except (TypeError, ValueError):
            return repr(result)
    return str(result)


def user_traceback(task: FunctionTask, exc: BaseException) -> str:
    """The traceback from the task's function down; flyray's frames above it only wrap it."""
    start = exc.__traceback__
    tb = start
    while tb is not None and tb.tb_frame.f_code is not getattr(task.func, "__code__", None):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or start))
