"""``flyray <verb> FILE TASK [--param value ...]``: commands built from a file's tasks.

A verb group resolves FILE to the file's tasks; each task becomes a command whose options are
the task's parameters, and which calls the verb's action with the parsed values.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from flyray.errors import FlyrayError
from flyray.task.base import FunctionTask
from flyray.task.loader import load_module, tasks_in

from .params import options_for

# action(verb options, task, task arguments) -> exit code
TaskAction = Callable[[dict[str, Any], FunctionTask, dict[str, Any]], int]


class TaskCommands(click.Group):
    """The tasks of one FILE, each a command whose options are its parameters."""

    def __init__(self, target: str, action: TaskAction, verb_options: dict[str, Any]) -> None:
        super().__init__(name=target, help=f"Tasks in {target}.")
        self.target, self.action, self.verb_options = target, action, verb_options

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._tasks())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        tasks = self._tasks()
        if name not in tasks:
            known = ", ".join(sorted(tasks)) or "none"
            raise click.UsageError(f"{name!r} is not a task in {self.target} (tasks: {known})", ctx)
        task = tasks[name]

        def invoke(**kwargs: Any) -> None:
            sys.exit(self.action(self.verb_options, task, kwargs))

        return click.Command(
            name=name,
            callback=invoke,
            params=options_for(task.func),
            help=(task.__doc__ or f"Task {task.name}.").strip().splitlines()[0],
        )

    def _tasks(self) -> dict[str, FunctionTask]:
        try:
            return tasks_in(load_module(self.target))
        except FlyrayError as exc:
            raise click.UsageError(str(exc)) from exc


class FileTaskGroup(click.Group):
    """A verb taking ``FILE TASK [--param value ...]`` after its own options."""

    def __init__(self, *args: Any, action: TaskAction, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(*args, **kwargs)
        self.action = action

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] FILE TASK [--PARAM VALUE ...]")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Arguments"):
            formatter.write_dl(
                [
                    ("FILE", "a .py file or an importable module"),
                    (
                        "TASK",
                        f"a task in it; `{ctx.command_path} FILE TASK --help` lists its parameters",
                    ),
                ]
            )

    def get_command(self, ctx: click.Context, name: str) -> click.Command:
        return TaskCommands(name, self.action, dict(ctx.params))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        return args[0], self.get_command(ctx, args[0]), args[1:]


def file_task_command(name: str, action: TaskAction, **kwargs: Any) -> Callable[..., FileTaskGroup]:
    """Decorator for a verb function whose options are collected, then ``action`` runs."""
    return click.group(name, cls=FileTaskGroup, action=action, **kwargs)
