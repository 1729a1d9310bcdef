"""``flyray cancel RUN``: stop a run that outlives flyray (``--detach``) on its cluster."""

from __future__ import annotations

import click

from .output import stderr
from .runs import executor_of, run_store_option


@click.command("cancel")
@click.argument("run_id", metavar="RUN")
@run_store_option
def cancel(run_id: str, run_store: str | None) -> None:
    """Stop RUN: a detached cluster run's Ray job, or a kuberay run's RayJob or Job (deleted)."""
    with executor_of(run_store, run_id) as executor:
        line = executor.cancel(run_id)
    stderr.print(line, markup=False, soft_wrap=True)
