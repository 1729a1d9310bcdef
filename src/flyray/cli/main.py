"""``flyray``: the command group; each verb lives in a module of its own."""

from __future__ import annotations

import click

import flyray

from .cancel import cancel
from .config import config
from .logs import logs
from .render import render
from .run import run
from .runs import runs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(flyray.__version__, prog_name="flyray")
def cli() -> None:
    """Declare a Ray cluster next to a Python task and run it."""


cli.add_command(config)
cli.add_command(run)
cli.add_command(render)
cli.add_command(runs)
cli.add_command(logs)
cli.add_command(cancel)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="flyray")
