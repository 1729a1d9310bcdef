"""``flyray cancel RUN``: stop a run's Ray job on its cluster."""

from __future__ import annotations

import click

from flyray.errors import ConfigError, FlyrayError

from .output import stderr
from .runs import fail, open_store, run_store_option


@click.command("cancel")
@click.argument("run_id", metavar="RUN")
@run_store_option
def cancel(run_id: str, run_store: str | None) -> None:
    """Stop RUN's Ray job (a detached `--mode cluster` run) and record it as STOPPED."""
    from flyray.executors.cluster import cancel_run

    try:
        store = open_store(run_store)
        record = store.load_record(run_id)
        if record.mode != "cluster":
            raise ConfigError(
                "RUN", run_id, f"is a {record.mode} run; only detached cluster runs outlive flyray"
            )
        was = record.status
        record = cancel_run(store, record)
    except FlyrayError as exc:
        fail(exc)
    if was.is_terminal() or record.message != "cancelled with `flyray cancel`":
        stderr.print(f"run {run_id} had already ended: {record.status.value}", markup=False)
    else:
        stderr.print(f"run {run_id}: Ray job stopped; status {record.status.value}", markup=False)
