"""``flyray runs list`` and ``flyray runs show RUN``: the runs a run store has recorded."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from flyray.config.settings import Settings
from flyray.errors import FlyrayError
from flyray.executors.base import Executor
from flyray.executors.registry import executor_type
from flyray.store.record import Attempt, RunRecord
from flyray.store.runstore import ErrorInfo, RunStore

from .output import stderr

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_LIMIT = 20
_STATUS_STYLES = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "STOPPED": "yellow",
    "RUNNING": "cyan",
    "LOST": "magenta",
}


def run_store_option(func: F) -> F:
    """``--run-store URI``, shared by every command that reads or writes the run store."""
    return click.option(
        "--run-store",
        metavar="URI",
        default=None,
        help="A folder or fsspec URI [default: the `run_store` setting, see `flyray config`].",
    )(func)


def open_store(run_store: str | None) -> RunStore:
    """The run store a ``--run-store`` flag names, else the one the settings name."""
    return RunStore(Settings.load(overrides={"run_store": run_store}).run_store_path())


def executor_of(run_store: str | None, run_id: str) -> Executor:
    """The executor of the mode that made the run, over the run store that keeps it."""
    settings = Settings.load(overrides={"run_store": run_store})
    record = RunStore(settings.run_store_path()).load_record(run_id)
    return executor_type(record.mode)(settings)


@click.group("runs")
def runs() -> None:
    """List and inspect the runs in the run store."""


@runs.command("list")
@run_store_option
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Show at most N runs, newest first (0: all).",
)
@click.option(
    "--kuberay",
    is_flag=True,
    help="List flyray's RayJobs and Jobs on Kubernetes instead, found by label (any run store's).",
)
@click.option("--namespace", help="With --kuberay: the namespace [default: the context's].")
@click.option("--context", help="With --kuberay: the kubeconfig context.")
@click.option(
    "--refresh",
    is_flag=True,
    help="First ask the cluster of each shown run that may still change (PENDING, RUNNING, "
    "LOST) how it is; a run whose cluster does not answer becomes LOST.",
)
def list_runs(
    run_store: str | None,
    limit: int,
    kuberay: bool,
    namespace: str | None,
    context: str | None,
    refresh: bool,
) -> None:
    """List the runs in the run store, newest first."""
    if kuberay:
        _list_kube_runs(namespace=namespace, context=context)
        return
    store = open_store(run_store)
    records = store.list_records()
    if not records:
        stderr.print(f"no runs in {escape(store.root)}", soft_wrap=True)
        return
    if refresh:
        refresh_runs(run_store, records[:limit] if limit else records)
        records = store.list_records()
    shown = records[:limit] if limit else records
    print_rows(runs_table(shown))
    if len(shown) < len(records):
        stderr.print(f"[dim]{len(shown)} of {len(records)} runs; --limit 0 lists them all[/]")


def refresh_runs(run_store: str | None, records: list[RunRecord]) -> None:
    """Bring the records of runs that may still change up to date, each by its mode's executor.

    A run that cannot be refreshed (e.g. its cluster refuses the token) keeps its record, and
    a warning says why.
    """
    settings = Settings.load(overrides={"run_store": run_store})
    executors: dict[str, Executor] = {}
    with contextlib.ExitStack() as stack:
        for record in records:
            if record.status.is_final():
                continue
            if record.mode not in executors:
                made = executor_type(record.mode)(settings)
                executors[record.mode] = stack.enter_context(made)
            refresh_run(executors[record.mode], record.run_id)


def refresh_run(executor: Executor, run_id: str) -> None:
    """Ask the run's executor for its status (its cluster, for a run that goes on); a flyray
    error is a warning: the stored record is shown as it is."""
    try:
        executor.status(run_id)
    except FlyrayError as exc:
        stderr.print(f"warning: run {run_id} not refreshed: {exc}", markup=False, soft_wrap=True)


def _list_kube_runs(*, namespace: str | None, context: str | None) -> None:
    """The RayJobs and Jobs labelled app.kubernetes.io/managed-by=flyray, as `kubectl get`."""
    from flyray.executors.kuberay.records import list_kube_runs

    settings = Settings.load(overrides={"namespace": namespace, "context": context})
    rows = list_kube_runs(settings)
    if not rows:
        stderr.print("no flyray RayJobs or Jobs in the namespace", soft_wrap=True)
        return
    table = Table(box=None, pad_edge=False)
    for column in ("kind", "name", "run id", "task", "status", "ray job", "created"):
        table.add_column(column, no_wrap=True)
    keys = ("kind", "name", "run_id", "task", "deployment", "job", "created")
    for row in rows:
        table.add_row(*(escape(row[key]) for key in keys))
    print_rows(table)


def print_rows(table: Table) -> None:
    """Whole rows, as `kubectl get` writes them: a narrow terminal wraps lines, not cells."""
    console = Console(highlight=False)
    needed = Measurement.get(console, console.options.update_width(10_000), table).maximum
    console.width = max(console.width, needed)
    console.print(table)


@runs.command("show")
@click.argument("run_id", metavar="RUN")
@run_store_option
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Text for people, JSON for scripts (the record's fields plus `error` and `files`).",
)
def show_run(run_id: str, run_store: str | None, output: str) -> None:
    """Show one run: its record, attempts, cluster, error and where its files are."""
    with executor_of(run_store, run_id) as executor:
        refresh_run(executor, run_id)  # a run still going on a cluster is asked there first
    store = open_store(run_store)
    record = store.load_record(run_id)
    error = store.read_error(run_id)
    files = run_files(store, run_id)
    if output == "json":
        click.echo(json.dumps(run_json(record, error, files), indent=2, sort_keys=True))
    else:
        click.echo("\n".join(run_text(record, error, files)))


def runs_table(records: list[RunRecord]) -> Table:
    """One row per run: id, task, mode, status, created, duration, attempts."""
    table = Table(box=None, pad_edge=False)
    for column in ("run id", "task", "mode", "status", "created (UTC)", "duration"):
        table.add_column(column, no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    for record in records:
        status = record.status.value
        table.add_row(
            Text(record.run_id),
            Text(record.task),
            Text(record.mode),
            Text(status, style=_STATUS_STYLES.get(status, "")),
            Text(_when(record.created_at, zone=False)),
            Text(_duration(record)),
            Text(str(len(record.attempts))),
        )
    return table


def run_files(store: RunStore, run_id: str) -> dict[str, str]:
    """Where the run's job log, manifest and inputs are in the store."""
    return {
        "logs": store.uri("runs", run_id, "logs", "job.log"),
        "manifest": store.uri("runs", run_id, "manifest.yaml"),
        "inputs": store.uri("runs", run_id, "inputs.pkl"),
    }


def run_json(record: RunRecord, error: ErrorInfo | None, files: dict[str, str]) -> dict[str, Any]:
    """The record's own fields (``RunRecord.from_dict`` reads them back), its error and files."""
    return {**record.to_dict(), "error": error.to_dict() if error else None, "files": files}


def run_text(record: RunRecord, error: ErrorInfo | None, files: dict[str, str]) -> list[str]:
    """The lines of ``flyray runs show``: fields, attempts, cluster, error, files."""
    lines = _fields(
        {
            "run": record.run_id,
            "task": record.task,
            "mode": record.mode,
            "status": record.status.value,
            "message": record.message,
            "created": _when(record.created_at),
            "started": _when(record.started_at),
            "ended": _when(record.ended_at),
            "duration": _duration(record),
            "rayjob": record.manifest_name,
        }
    )
    lines += _section("attempts", [_attempt_line(a) for a in record.attempts])
    lines += _section("cluster", _fields(record.cluster))
    if error is not None:
        lines += _section("error", [f"{error.type}: {error.message}"])
        lines += _section("remote traceback", error.traceback.rstrip("\n").splitlines())
    lines += _section("files", _fields(files))
    lines.append(f"\nlogs: flyray logs {record.run_id}")
    return lines


def _fields(values: dict[str, str | None]) -> list[str]:
    """``name  value`` lines, aligned, for the values that are set."""
    present = {name: value for name, value in values.items() if value}
    width = max((len(name) for name in present), default=0) + 2
    return [f"{name:<{width}}{value}" for name, value in present.items()]


def _section(title: str, lines: list[str]) -> list[str]:
    """A blank line, the title and the lines indented; nothing when there are no lines."""
    return ["", f"{title}:", *(f"  {line}" for line in lines)] if lines else []


def _attempt_line(attempt: Attempt) -> str:
    """``#1 r0a1b2c3d4e-1 FAILED 2026-01-31 12:00:05 exit 1`` for one attempt."""
    parts = (
        f"#{attempt.number}",
        attempt.submission_id,
        attempt.status.value,
        _when(attempt.started_at),
        attempt.message,
    )
    return "  ".join(part for part in parts if part)


def _when(timestamp: str | None, *, zone: bool = True) -> str:
    """An ISO time as ``2026-01-31 12:00:05 UTC`` (``UTC`` left out with ``zone=False``)."""
    if not timestamp:
        return ""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp  # not ours to judge: shown as stored
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if zone else "%Y-%m-%d %H:%M:%S").strip()


def _duration(record: RunRecord) -> str:
    """Start (or creation) to end as ``12.3 s`` / ``4m 05s``; empty while the run goes on."""
    try:
        start = datetime.fromisoformat(record.started_at or record.created_at)
        end = datetime.fromisoformat(record.ended_at or "")
    except (TypeError, ValueError):
        return ""
    seconds = max((end - start).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"
