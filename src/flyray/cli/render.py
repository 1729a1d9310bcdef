"""``flyray render [OPTIONS] FILE TASK [--param value ...]``: print a run's manifest.

A render writes nothing: the code bundle is named by the sha256 a run would store it under.
"""

from __future__ import annotations

from typing import Any

import click

from flyray.config.settings import Settings
from flyray.executors.base import new_run_id
from flyray.executors.render import render_kube_manifest
from flyray.manifest.serialization import dump_json, dump_yaml
from flyray.store.runstore import RunStore
from flyray.task.base import FunctionTask

from .runs import run_store_option
from .tasks import file_task_command


def _render_task(options: dict[str, Any], task: FunctionTask, kwargs: dict[str, Any]) -> int:
    """Print the manifest a run of ``task`` would create; ``kwargs`` (checked) are unused."""
    settings = Settings.load(
        overrides={
            "run_store": options["run_store"],
            "image": options["image"],
            "kuberay_version": options["kuberay_version"],
            "store_secret": options["store_secret"],
        }
    )
    manifest = render_kube_manifest(
        task,
        run_id=options["run_id"] or new_run_id(),
        store=RunStore(settings.run_store_path()),
        settings=settings,
        store_bundle=False,
    )
    dump = dump_json if options["output"] == "json" else dump_yaml
    click.echo(dump(manifest), nl=False)
    return 0


@file_task_command("render", _render_task, parameters_required=False)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Manifest format.",
)
@click.option(
    "--kuberay-version",
    metavar="X.Y.Z",
    help="The KubeRay operator to write for [default: the `kuberay_version` setting, 1.7.0].",
)
@click.option(
    "--image",
    default=None,
    help="Ray image [default: the `image` setting, else rayproject/ray for this Ray and Python].",
)
@run_store_option
@click.option(
    "--store-secret",
    metavar="SECRET",
    help="The Kubernetes Secret whose keys the pods get as env vars (the run store's credentials).",
)
@click.option("--run-id", default=None, help="The run's id [default: a new one].")
def render(
    output: str,
    kuberay_version: str | None,
    image: str | None,
    run_store: str | None,
    store_secret: str | None,
    run_id: str | None,
) -> None:
    """Print the RayJob manifest a run of TASK from FILE would create.

    A task whose RayJobConfig names an existing cluster (address=) gets the batch Job that
    kuberay mode creates for it instead: one pod that connects to that cluster. The manifest
    is the one a run submits, and rendering writes nothing: the project's code bundle is named
    by its sha256 in the run store, where a run stores it, and the entrypoint reads the run's
    inputs from there. Task parameters are optional: given ones are checked, but they do not
    change the manifest (a run stores them as its inputs). Options may also follow FILE or TASK.
    """
