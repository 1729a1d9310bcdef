"""``flyray logs RUN``: the job log a run store keeps for a run, or follows as it grows."""

from __future__ import annotations

import click

from .output import stderr
from .runs import executor_of, run_store_option


@click.command("logs")
@click.argument("run_id", metavar="RUN")
@run_store_option
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing the log as it grows, until the run ends."
)
def logs(run_id: str, run_store: str | None, follow: bool) -> None:
    """Print the job log of RUN (the Ray job's driver output) to stdout."""
    printed = ""
    with executor_of(run_store, run_id) as executor:
        for text in executor.logs(run_id, follow=follow):
            click.echo(text, nl=False)
            printed = text
        if not printed:  # only the note needs the status: a printed log skips a second refresh
            status = executor.status(run_id)
            stderr.print(
                f"run {run_id} ({status.value}) has no job log yet", markup=False, soft_wrap=True
            )
    if printed and not printed.endswith("\n"):
        click.echo()
