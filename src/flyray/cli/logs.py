"""``flyray logs RUN``: the job log a run store keeps for a run."""

from __future__ import annotations

import click

from flyray.errors import FlyrayError

from .output import stderr
from .runs import fail, load_current, open_store, run_store_option


@click.command("logs")
@click.argument("run_id", metavar="RUN")
@run_store_option
def logs(run_id: str, run_store: str | None) -> None:
    """Print the stored job log of RUN (the Ray job's driver output) to stdout."""
    try:
        store = open_store(run_store)
        record = load_current(store, run_id)
        text = store.read_log(run_id)
    except FlyrayError as exc:
        fail(exc)
    if not text:
        stderr.print(
            f"run {run_id} ({record.status.value}) has no job log yet", markup=False, soft_wrap=True
        )
        return
    click.echo(text, nl=not text.endswith("\n"))
