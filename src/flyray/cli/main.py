"""``flyray``: the command group; each verb lives in a module of its own."""

from __future__ import annotations

import gc
from typing import Any

import click

import flyray
from flyray.errors import FlyrayError

from .cancel import cancel
from .cluster import cluster
from .config import config
from .logs import logs
from .output import fail
from .render import render
from .run import run
from .runs import runs
from .sandbox import sandbox


class _Group(click.Group):
    """The command group; a FlyrayError from any command is printed as one line, exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FlyrayError as exc:
            fail(exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(flyray.__version__, prog_name="flyray")
def cli() -> None:
    """Declare a Ray cluster next to a Python task and run it."""


cli.add_command(config)
cli.add_command(run)
cli.add_command(render)
cli.add_command(runs)
cli.add_command(logs)
cli.add_command(cancel)
cli.add_command(cluster)
cli.add_command(sandbox)


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="flyray")
    finally:
        # Python's last garbage collection at exit walks every object: after a run has imported
        # Ray that takes ~0.4 s, for nothing. Frozen objects are skipped; atexit still runs.
        gc.freeze()
