"""``flyray <verb> FILE TASK [--param value ...]``: commands built from a file's tasks.

A verb group resolves FILE to the file's tasks; each task becomes a command whose options are
the task's parameters, and which calls the verb's action with the parsed values. The verb's own
options may stand anywhere on the line: before FILE, between FILE and TASK, or among the task's
parameters (where a task parameter of the same name takes the flag); the last one given counts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
from click.core import ParameterSource

from flyray.errors import FlyrayError
from flyray.task.base import FunctionTask
from flyray.task.loader import load_module, tasks_in

from .params import options_for

# action(verb options, task, task arguments) -> exit code
TaskAction = Callable[[dict[str, Any], FunctionTask, dict[str, Any]], int]


class TaskCommand(click.Command):
    """One task: its parameters, then the verb's options whose names and flags are still free."""

    def __init__(
        self,
        name: str,
        task: FunctionTask,
        *,
        action: TaskAction,
        verb_params: Sequence[click.Parameter],
        verb_options: dict[str, Any],
        parameters_required: bool,
    ) -> None:
        self.parameters = options_for(task.func, required=parameters_required)
        self.verb_params = [p for p in verb_params if not _clashes(p, self.parameters)]
        self.task, self.action, self.verb_options = task, action, verb_options
        super().__init__(
            name=name,
            callback=self._call,
            params=[*self.parameters, *self.verb_params],
            help=(task.__doc__ or f"Task {task.name}.").strip().splitlines()[0],
        )

    def _call(self, **values: Any) -> None:
        """The verb's action with the options typed anywhere and the task's arguments."""
        options = {**self.verb_options, **_typed(click.get_current_context(), self.verb_params)}
        sys.exit(self.action(options, self.task, {p.name: values[p.name] for p in self.parameters}))

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The task's parameters and the verb's options, each under its own heading."""
        sections = (
            ("Task parameters", self.parameters),
            ("Options", [*self.verb_params, self.get_help_option(ctx)]),
        )
        for title, params in sections:
            rows = [row for p in params if p is not None and (row := p.get_help_record(ctx))]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class TaskCommands(click.Group):
    """The tasks of one FILE, each a command whose options are its parameters."""

    def __init__(
        self,
        target: str,
        *,
        action: TaskAction,
        verb_params: Sequence[click.Parameter],
        verb_options: dict[str, Any],
        parameters_required: bool,
    ) -> None:
        super().__init__(name=target, help=f"Tasks in {target}.", params=list(verb_params))
        self.target, self.action, self.verb_options = target, action, verb_options
        self.parameters_required = parameters_required

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] TASK [--PARAM VALUE ...]")

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._tasks())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        tasks = self._tasks()
        if name not in tasks:
            known = ", ".join(sorted(tasks)) or "none"
            raise click.UsageError(f"{name!r} is not a task in {self.target} (tasks: {known})", ctx)
        return TaskCommand(
            name,
            tasks[name],
            action=self.action,
            verb_params=self.params,
            verb_options={**self.verb_options, **_typed(ctx, self.params)},
            parameters_required=self.parameters_required,
        )

    def _tasks(self) -> dict[str, FunctionTask]:
        try:
            return tasks_in(load_module(self.target))
        except FlyrayError as exc:
            raise click.UsageError(str(exc)) from exc


class FileTaskGroup(click.Group):
    """A verb taking ``FILE TASK [--param value ...]``, its own options anywhere on the line.

    ``parameters_required=False`` makes every task parameter optional (a verb that does not use
    their values, such as ``render``); given ones are still parsed and checked.
    """

    def __init__(
        self, *args: Any, action: TaskAction, parameters_required: bool = True, **kwargs: Any
    ) -> None:
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(*args, **kwargs)
        self.action, self.parameters_required = action, parameters_required

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
        return TaskCommands(
            name,
            action=self.action,
            verb_params=self.params,
            verb_options=dict(ctx.params),
            parameters_required=self.parameters_required,
        )

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        return args[0], self.get_command(ctx, args[0]), args[1:]


def file_task_command(name: str, action: TaskAction, **kwargs: Any) -> Callable[..., FileTaskGroup]:
    """Decorator for a verb function whose options are collected, then ``action`` runs."""
    return click.group(name, cls=FileTaskGroup, action=action, **kwargs)


def _typed(ctx: click.Context, params: Sequence[click.Parameter]) -> dict[str, Any]:
    """The values of ``params`` typed on this part of the command line (not their defaults)."""
    return {
        p.name: ctx.params[p.name]
        for p in params
        if p.name in ctx.params and ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE
    }


def _clashes(option: click.Parameter, taken: Sequence[click.Parameter]) -> bool:
    """True if ``option`` shares its name or a flag with one of ``taken``."""
    return any(option.name == other.name or set(option.opts) & set(other.opts) for other in taken)
