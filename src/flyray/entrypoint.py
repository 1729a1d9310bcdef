"""The driver of every non-local run: ``python -m flyray.entrypoint --store ... --run-id ...``.

Runs in the job's working directory (the unpacked code bundle, i.e. the project root; with
``--bundle`` it fetches and unpacks the bundle itself, for a pod with no Ray job around it):
loads the task from ``--file``, reads the inputs from the run store, runs one attempt (pre()
-> function -> post()) and writes the outputs, or the error with its traceback. Retries,
timeouts and the run's record belong to the executor that submitted the job, not here.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from flyray.errors import FlyrayError, TaskLoadError
from flyray.store.runstore import ErrorInfo
from flyray.task.base import FunctionTask
from flyray.task.context import IN_CLUSTER_ENV

__all__ = ["command", "enter_bundle", "find_task", "main", "version_skew"]


def command(
    *,
    store: str,
    run_id: str,
    task_file: str,
    task_name: str,
    bundle: str | None = None,
    python: str = "python",
) -> list[str]:
    """The argv of the entrypoint for one run; ``task_file`` is relative to the project root.

    ``bundle`` (a code bundle's URI) is for a process not started in the unpacked bundle.
    """
    return [
        python,
        "-m",
        "flyray.entrypoint",
        "--store",
        store,
        "--run-id",
        run_id,
        "--file",
        task_file,
        "--task",
        task_name,
        *(["--bundle", bundle] if bundle else []),
    ]


def find_task(task_file: str, task_name: str) -> FunctionTask:
    """The task named ``task_name`` (``<environment>.<function>``) defined in ``task_file``."""
    from flyray.task.loader import load_module, tasks_in

    if not Path(task_file).is_file():
        where = f"in {Path.cwd()}, the job's working directory (the unpacked code bundle)"
        raise TaskLoadError("--file", task_file, f"does not exist {where}")
    tasks = {task.name: task for task in tasks_in(load_module(task_file)).values()}
    if task_name not in tasks:
        known = ", ".join(sorted(tasks)) or "none"
        rule = f"is not a task in {task_file} (tasks there: {known})"
        raise TaskLoadError("--task", task_name, rule)
    return tasks[task_name]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the task once and store its outputs (exit 0) or its error (exit 1)."""
    from flyray._aio import run_sync
    from flyray.store.runstore import RunStore

    args = _parser().parse_args(argv)
    os.environ[IN_CLUSTER_ENV] = "1"
    skew = version_skew()
    if skew:
        print(f"flyray.entrypoint: warning: {skew}", file=sys.stderr)
    store = RunStore(args.store)
    started = False
    try:
        if args.bundle:
            enter_bundle(args.bundle)
        task = find_task(args.file, args.task)
        task_args, task_kwargs = store.read_inputs(args.run_id)
        started = True
        result = run_sync(task.run_once(task_args, task_kwargs))
        store.write_outputs(args.run_id, result)
    except BaseException as exc:
        _report(exc, before_task=not started)
        if skew:
            print(f"flyray.entrypoint: note: {skew}", file=sys.stderr)
        try:
            store.write_error(args.run_id, _error_info(ErrorInfo.from_exception(exc), skew))
        except Exception:
            print("flyray.entrypoint: could not store the error:", file=sys.stderr)
            traceback.print_exc()
        if isinstance(exc, KeyboardInterrupt):
            raise  # stopped from outside: keep Python's exit for it
        return 1  # also for SystemExit: a run without outputs did not succeed
    return 0


def version_skew() -> str | None:
    """A sentence when this flyray differs from the caller's (passed in the job's env), else None.

    Shipped with the job (the default), flyray is the caller's own; a cluster with flyray
    installed and shipping off may have another version, which may read the run's inputs or
    the task's config differently.
    """
    from flyray._version import __version__
    from flyray.executors.shipping import CALLER_VERSION_ENV, SHIPPED_ENV

    caller = os.environ.get(CALLER_VERSION_ENV)
    if not caller or caller == __version__:
        return None
    import flyray

    where = Path(flyray.__file__).parent
    shipped = os.environ.get(SHIPPED_ENV) == "1"
    todo = (
        "the cluster's own flyray came first on its Python path although flyray was shipped"
        if shipped
        else "turn shipping on (drop --no-ship-flyray, or ship_flyray = true) or install "
        f"flyray=={caller} on the cluster"
    )
    return f"this cluster's flyray is {__version__} (at {where}), the caller's is {caller}: {todo}"


def enter_bundle(uri: str, parent: Path | None = None) -> Path:
    """Unpack the code bundle into a fresh folder (under ``parent``) and work in it; the folder.

    The folder becomes the working directory and the first entry of ``sys.path``, as the
    unpacked bundle is for a driver that Ray starts in it; it is removed when the driver exits.
    """
    import atexit
    import shutil
    import tempfile

    from flyray.store.bundle import unpack_bundle

    folder = Path(tempfile.mkdtemp(prefix="flyray-bundle-", dir=parent))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    folder = unpack_bundle(uri, folder)
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    return folder


def _error_info(info: ErrorInfo, skew: str | None) -> ErrorInfo:
    """The stored error; with a version skew, its traceback text ends with a note about it."""
    if not skew:
        return info
    import dataclasses

    return dataclasses.replace(info, traceback=f"{info.traceback}(flyray: {skew})\n")


def _report(exc: BaseException, *, before_task: bool) -> None:
    """Print why the run failed: one line for flyray's own errors before the task ran."""
    if before_task and isinstance(exc, FlyrayError):
        print(f"flyray.entrypoint: {exc}", file=sys.stderr)
    else:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    """The entrypoint's command line; every option but ``--bundle`` is required."""
    parser = argparse.ArgumentParser(
        prog="python -m flyray.entrypoint", description="Run one flyray task as a job's driver."
    )
    parser.add_argument("--store", required=True, help="the run store's root (path or URI)")
    parser.add_argument("--run-id", required=True, help="the run whose inputs to read")
    parser.add_argument("--file", required=True, help="the task's file, relative to the cwd")
    parser.add_argument("--task", required=True, help="the task's full name, <env>.<function>")
    parser.add_argument("--bundle", help="a code bundle's URI to fetch and run in (optional)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
