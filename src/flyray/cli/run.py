"""``flyray run [--mode MODE] FILE TASK [--param value ...]``: run a task, print its result."""

from __future__ import annotations

import time
from typing import Any

import click

from flyray.errors import FlyrayError, TaskError, is_task_error_copy
from flyray.executors.registry import MODES
from flyray.runner import with_runcontext
from flyray.task.base import FunctionTask

from .output import format_result, stderr, user_traceback
from .tasks import file_task_command


def _run_task(options: dict[str, Any], task: FunctionTask, kwargs: dict[str, Any]) -> int:
    progress = _Progress(task)
    try:
        context = with_runcontext(
            options["mode"],
            on_progress=progress,
            on_log=progress.log,
            run_store=options["run_store"],
            image=options["image"],
            address=options["address"],
            namespace=options["namespace"],
            context=options["context"],
            kuberay_version=options["kuberay_version"],
            shared_run_store=True if options["shared_run_store"] else None,
            ship_flyray=options["ship_flyray"],
            store_secret=options["store_secret"],
            detach=options["detach"],
            skip_version_check=options["skip_version_check"],
            fresh=options["fresh"],
        )
        handle = context.run(task, **kwargs)
        if options["detach"]:
            progress.stop()
            stderr.print(
                f"follow it with `flyray logs {handle.run_id}`, stop it with "
                f"`flyray cancel {handle.run_id}`",
                markup=False,
            )
            click.echo(handle.run_id)
            return 0
        result = handle.result()
    except FlyrayError as exc:
        progress.stop()
        if is_task_error_copy(exc):  # the task's own error, raised in this process
            return _task_failed(task, exc)
        if isinstance(exc, TaskError) and exc.remote_traceback:
            stderr.print(exc.remote_traceback, markup=False, soft_wrap=True, end="")
        stderr.print(f"[red]Error:[/] {exc}", soft_wrap=True)
        if isinstance(exc, TaskError) and exc.run_id:
            stderr.print(f"run {exc.run_id}: logs in {exc.logs}", markup=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        progress.stop()
        stderr.print(f"[yellow]Interrupted:[/] {task.name} stopped")
        return 130
    except Exception as exc:  # raised by the task's own code
        progress.stop()
        return _task_failed(task, exc)
    progress.stop()
    stderr.print(
        f"[green]✓[/] {task.name} finished in {progress.elapsed():.1f} s (run {handle.run_id})"
    )
    click.echo(format_result(result))
    return 0


def _task_failed(task: Any, exc: BaseException) -> int:
    """Print the task's own traceback (from its function down) and error; exit code 1."""
    stderr.print(user_traceback(task, exc), markup=False, soft_wrap=True, end="")
    stderr.print(f"[red]Task {task.name} failed:[/] {type(exc).__name__}: {exc}")
    return 1


@file_task_command("run", _run_task)
@click.option(
    "--mode",
    type=click.Choice(list(MODES)),
    default=None,
    help="Where the task runs [default: the `mode` setting, else local].",
)
@click.option("--address", help="cluster mode: the Jobs API, http://HOST:8265.")
@click.option(
    "--detach", is_flag=True, help="cluster and kuberay modes: print the run id once submitted."
)
@click.option(
    "--fresh",
    is_flag=True,
    help="local-cluster mode: start a new cluster even if a warm one matches.",
)
@click.option(
    "--namespace", help="kuberay mode: the namespace [default: the kubeconfig context's]."
)
@click.option("--context", help="kuberay mode: the kubeconfig context [default: the current one].")
@click.option(
    "--kuberay-version",
    metavar="X.Y.Z",
    help="kuberay mode: the KubeRay operator installed [default: the setting, 1.7.0].",
)
@click.option(
    "--shared-run-store",
    is_flag=True,
    help="kuberay mode: the run store path is shared storage the cluster's pods mount too.",
)
@click.option(
    "--ship-flyray/--no-ship-flyray",
    default=None,
    help="cluster and kuberay modes: send flyray with the job, so the cluster needs only Ray "
    "[default: the ship_flyray setting, on]; off for clusters with flyray installed.",
)
@click.option(
    "--store-secret",
    metavar="SECRET",
    help="kuberay mode: the Kubernetes Secret whose keys the pods get as env vars (the run "
    "store's credentials).",
)
@click.option(
    "--skip-version-check", is_flag=True, help="Run even if the cluster's versions differ."
)
@click.option("--run-store", help="Where run records go (path or fsspec URI).")
@click.option("--image", help="Container image of the Ray nodes (default: the official Ray image).")
def run(**options: object) -> None:
    """Run TASK from FILE and print its result."""


class _Progress:
    """A spinner on stderr while a run prepares (e.g. Ray starting) and finishes."""

    def __init__(self, task: FunctionTask) -> None:
        self.task = task
        self.started = time.monotonic()
        self.status: Any = None

    def __call__(self, phase: str) -> None:
        self.stop()
        if phase == "pre":
            self._spin(f"{self.task.describe_pre()} for {self.task.name}")
        elif phase == "running":
            stderr.print(f"[dim]{self.elapsed():.1f} s[/] running {self.task.name}")
        elif phase == "post":
            self._spin("Finishing")
        else:
            stderr.print(f"[dim]{self.elapsed():.1f} s[/] {phase}", markup=True, soft_wrap=True)

    def log(self, text: str) -> None:
        """Job log text, passed through as it arrives."""
        stderr.file.write(text)
        stderr.file.flush()

    def _spin(self, text: str) -> None:
        self.status = stderr.status(text)
        self.status.start()

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started
