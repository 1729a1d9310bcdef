"""The RayJob manifest of one run, built in one place so every caller gets the same bytes.

``LocalClusterExecutor.submit`` runs what this renders and ``flyray render`` prints it: the
task's code bundle is stored in the run store (content-addressed, so storing it again is a
no-op), the entrypoint points at that store and run id, and the image matches the local Ray.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from flyray.config.settings import Settings
from flyray.manifest.rayjob import LATEST_KUBERAY_VERSION
from flyray.store.runstore import RunStore
from flyray.task.base import FunctionTask

__all__ = ["render_for_run"]


def render_for_run(
    task: FunctionTask,
    *,
    run_id: str,
    store: RunStore,
    settings: Settings,
    namespace: str | None = None,
    kuberay_version: str = LATEST_KUBERAY_VERSION,
) -> dict[str, Any]:
    """Store the code bundle of ``task`` in ``store``; the RayJob that runs it as ``run_id``.

    ``namespace`` goes into the RayJob's metadata (kuberay mode creates it there).
    """
    from flyray import entrypoint
    from flyray.manifest.images import default_image, ray_version
    from flyray.manifest.rayjob import render_rayjob
    from flyray.store.bundle import create_bundle

    bundle = create_bundle(Path(inspect.getfile(task.func)), store)
    command = entrypoint.command(
        store=store.uri(), run_id=run_id, task_file=bundle.task_file, task_name=task.name
    )
    return render_rayjob(
        task,
        run_id=run_id,
        entrypoint=command,
        image=settings.image or default_image(),
        working_dir=bundle.uri,
        namespace=namespace,
        kuberay_version=kuberay_version,
        ray_version=ray_version(),
    )
