"""``flyray sandbox up|down|status``: a real KubeRay on this machine, for people.

``up`` builds (once) and starts the control plane, the KubeRay operator and the process
kubelet, shows progress while it does, and prints what to export for ``flyray run --mode
kuberay``; ``down`` stops all of it; ``status`` tells what runs. See docs/sandbox.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.markup import escape

from flyray.sandbox.control import sandbox_status, start_sandbox, stop_sandbox
from flyray.sandbox.state import sandbox_dir

from .output import stderr

DIR_OPTION = click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The sandbox's folder [default: $FLYRAY_SANDBOX_DIR or ~/.cache/flyray/sandbox].",
)


@click.group("sandbox")
def sandbox() -> None:
    """A real KubeRay on this machine: Kubernetes' own control plane, pods as processes."""


@sandbox.command("up")
@DIR_OPTION
def up(folder: Path | None) -> None:
    """Start the sandbox (building Kubernetes and KubeRay from source the first time)."""
    folder = folder or sandbox_dir()
    began = time.monotonic()
    with stderr.status("sandbox: starting", spinner="dots") as status:
        last = ["sandbox: starting"]

        def say(line: str) -> None:
            stderr.print(escape(line))
            last[0] = line

        def tick() -> None:
            status.update(f"{escape(last[0])} ({time.monotonic() - began:.0f} s)")

        state = start_sandbox(folder, say=say, tick=tick)
    stderr.print(f"sandbox: up in {time.monotonic() - began:.0f} s; to use it:")
    for line in state.exports():
        click.echo(line)
    stderr.print("then: flyray run --mode kuberay FILE TASK; stop it with: flyray sandbox down")


@sandbox.command("down")
@DIR_OPTION
def down(folder: Path | None) -> None:
    """Stop the sandbox and remove everything it started."""
    folder = folder or sandbox_dir()
    with stderr.status("sandbox: stopping", spinner="dots"):
        was_running = stop_sandbox(folder, say=lambda line: stderr.print(escape(line)))
    stderr.print("sandbox: stopped; nothing of it is left" if was_running else "sandbox: none ran")


@sandbox.command("status")
@DIR_OPTION
def status(folder: Path | None) -> None:
    """Whether the sandbox runs, how to reach it, and its pods and RayJobs."""
    found = sandbox_status(folder or sandbox_dir())
    if not found["running"]:
        click.echo("sandbox: not running (start it with: flyray sandbox up)")
        return
    if not found["ready"]:
        click.echo(f"sandbox: starting (supervisor pid {found['pid']})")
        return
    click.echo(f"sandbox: running for {found['uptime_s']:.0f} s (supervisor pid {found['pid']})")
    for line in found["state"].exports():
        click.echo(line)
    if "error" in found:
        click.echo(found["error"])
        return
    click.echo(f"pods: {len(found['pods'])}")
    for name, phase in found["pods"]:
        click.echo(f"  {name}  {phase}")
    click.echo(f"rayjobs: {len(found['rayjobs'])}")
    for name, deployment in found["rayjobs"]:
        click.echo(f"  {name}  {deployment}")
