"""What the CLI prints: progress and errors on stderr, results on stdout."""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape

from flyray.errors import FlyrayError
from flyray.task.base import FunctionTask

stderr = Console(stderr=True, highlight=False)


def fail(exc: FlyrayError) -> NoReturn:
    """Print a flyray error as one readable line on stderr and exit 1."""
    stderr.print(f"[red]Error:[/] {escape(str(exc))}", soft_wrap=True)
    sys.exit(1)


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
