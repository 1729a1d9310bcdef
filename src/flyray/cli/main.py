"""``flyray``: the command group; each verb lives in a module of its own."""

from __future__ import annotations

import click

import flyray

from .config import config
from .run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(flyray.__version__, prog_name="flyray")
def cli() -> None:
    """Declare a Ray cluster next to a Python task and run it."""


cli.add_command(config)
cli.add_command(run)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="flyray")
