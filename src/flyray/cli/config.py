"""``flyray config``: the effective settings and where each came from."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from flyray.config.settings import Settings


@click.command("config")
def config() -> None:
    """Show the effective settings (defaults < pyproject.toml < FLYRAY_* < flags)."""
    table = Table(box=None, pad_edge=False)
    for column in ("setting", "value", "from"):
        table.add_column(column, overflow="fold")
    for name, value, source in Settings.load().rows():
        table.add_row(name, value, source)
    Console(highlight=False).print(table)
