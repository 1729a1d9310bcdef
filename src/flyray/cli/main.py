"""``flyray``: run a task from a file or module (``flyray run FILE TASK --param value``)."""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any

import click
from rich.console import Console

import flyray
from flyray.errors import FlyrayError
from flyray.runner import MODES, with_runcontext
from flyray.task.base import FunctionTask
from flyray.task.loader import load_module, tasks_in

from .params import options_for

_stderr = Console(stderr=True, highlight=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(flyray.__version__, prog_name="flyray")
def cli() -> None:
    """Declare a Ray cluster next to a Python task and run it."""


class TaskCommands(click.Group):
    """``flyray run FILE``: the tasks of FILE, each a command whose options are its parameters."""

    def __init__(self, target: str, mode: str) -> None:
        super().__init__(name=target, help=f"Tasks in {target}.")
        self.target, self.mode = target, mode

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._tasks())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        tasks = self._tasks()
        if name not in tasks:
            known = ", ".join(sorted(tasks)) or "none"
            raise click.UsageError(f"{name!r} is not a task in {self.target} (tasks: {known})", ctx)
        return _task_command(tasks[name], self.mode)

    def _tasks(self) -> dict[str, FunctionTask]:
        try:
            return tasks_in(load_module(self.target))
        except FlyrayError as exc:
            raise click.UsageError(str(exc)) from exc


class RunGroup(click.Group):
    """``flyray run [--mode MODE] FILE TASK [--param value ...]``."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[--mode MODE] FILE TASK [--PARAM VALUE ...]")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Arguments"):
            formatter.write_dl(
                [
                    ("FILE", "a .py file or an importable module"),
                    ("TASK", "a task in it; `flyray run FILE TASK --help` lists its parameters"),
                ]
            )

    def get_command(self, ctx: click.Context, name: str) -> click.Command:
        return TaskCommands(name, ctx.params["mode"])

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        return args[0], self.get_command(ctx, args[0]), args[1:]


@cli.group(cls=RunGroup, invoke_without_command=False, no_args_is_help=True)
@click.option(
    "--mode",
    type=click.Choice(list(MODES)),
    default="local",
    show_default=True,
    help="Where the task runs.",
)
def run(mode: str) -> None:
    """Run TASK from FILE and print its result."""


def _task_command(task: FunctionTask, mode: str) -> click.Command:
    def invoke(**kwargs: Any) -> None:
        sys.exit(_run_task(task, mode, kwargs))

    return click.Command(
        name=task.short_name,
        callback=invoke,
        params=options_for(task.func),
        help=(task.__doc__ or f"Run {task.name}.").strip().splitlines()[0],
    )


def _run_task(task: FunctionTask, mode: str, kwargs: dict[str, Any]) -> int:
    progress = _Progress(task)
    try:
        handle = with_runcontext(mode, on_progress=progress).run(task, **kwargs)
        result = handle.outputs()
    except FlyrayError as exc:
        progress.stop()
        _stderr.print(f"[red]Error:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        progress.stop()
        _stderr.print(f"[yellow]Interrupted:[/] {task.name} stopped")
        return 130
    except Exception as exc:  # raised by the task's own code
        progress.stop()
        _stderr.print(_user_traceback(task, exc), markup=False, soft_wrap=True, end="")
        _stderr.print(f"[red]Task {task.name} failed:[/] {type(exc).__name__}: {exc}")
        return 1
    progress.stop()
    _stderr.print(
        f"[green]✓[/] {task.name} finished in {progress.elapsed():.1f} s (run {handle.run_id})"
    )
    click.echo(_format_result(result))
    return 0


class _Progress:
    """A spinner on stderr while a run prepares (e.g. Ray starting) and finishes."""

    def __init__(self, task: FunctionTask) -> None:
        self.task = task
        self.started = time.monotonic()
        self.status = None

    def __call__(self, phase: str) -> None:
        self.stop()
        if phase == "pre":
            self._spin(f"{self.task.describe_pre()} for {self.task.name}")
        elif phase == "running":
            _stderr.print(f"[dim]{self.elapsed():.1f} s[/] running {self.task.name}")
        elif phase == "post":
            self._spin("Finishing")
        else:
            _stderr.print(f"[yellow]{phase}[/]")

    def _spin(self, text: str) -> None:
        self.status = _stderr.status(text)
        self.status.start()

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _user_traceback(task: FunctionTask, exc: BaseException) -> str:
    """The traceback from the task's function down; flyray's frames above it only wrap it."""
    start = exc.__traceback__
    tb = start
    while tb is not None and tb.tb_frame.f_code is not getattr(task.func, "__code__", None):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or start))


def _format_result(result: Any) -> str:
    if isinstance(result, (dict, list)):
        try:
            return json.dumps(result, indent=2, sort_keys=True)
        except (TypeError, ValueError):
            return repr(result)
    return str(result)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="flyray")


if __name__ == "__main__":
    main()
