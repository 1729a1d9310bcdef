"""The RayJob manifest of one run, built in one place so every caller gets the same bytes.

``LocalClusterExecutor.submit`` runs what this renders and ``flyray render`` prints it: the
task's code bundle is named by its sha256 in the run store (a run stores it there, once per
content; a render only computes the name and writes nothing), the entrypoint points at that
store and run id, and the image matches the local Ray.
In kuberay mode a task that names an existing cluster (``RayJobConfig.address``) is a batch
Job instead (``render_kube_manifest``): one pod that fetches the bundle and connects there.
Both are rendered from the task's one ``RayJobRequest``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flyray.config.settings import Settings
from flyray.executors.base import RunOptions
from flyray.manifest.request import RayJobRequest
from flyray.store.runstore import RunStore
from flyray.task.base import FunctionTask

if TYPE_CHECKING:
    from flyray.store.bundle import Bundle

__all__ = ["render_for_run", "render_kube_manifest"]


def render_for_run(
    task: FunctionTask,
    *,
    run_id: str,
    store: RunStore,
    settings: Settings,
    namespace: str | None = None,
    mode: str = "kuberay",
    options: RunOptions | None = None,
    store_bundle: bool = True,
) -> dict[str, Any]:
    """Store the code bundle of ``task`` in ``store``; the RayJob that runs it as ``run_id``.

    ``namespace`` goes into the RayJob's metadata (kuberay mode creates it there); the
    ``kuberay_version`` setting picks the fields written; ``mode`` is the run's (the
    environment's ``Image`` is realised for it); the run's ``options`` add env vars, labels,
    annotations and the pods' service account; the ``store_secret`` setting (kuberay only)
    gives the pods the run store's credentials. The container image: the environment's own,
    else the ``image`` setting (``--image``), else the official Ray image (``default_image_for``).
    Without ``store_bundle`` nothing is written: the manifest names the bundle's URI all the same.
    flyray ships itself with the job (``executors/shipping.py``).
    """
    from flyray.plugins.ray.request import ray_request

    return _render_rayjob(
        ray_request(task),
        run_id=run_id,
        store=store,
        settings=settings,
        namespace=namespace,
        mode=mode,
        options=options or RunOptions(),
        store_bundle=store_bundle,
    )


def render_kube_manifest(
    task: FunctionTask,
    *,
    run_id: str,
    store: RunStore,
    settings: Settings,
    namespace: str | None = None,
    options: RunOptions | None = None,
    store_bundle: bool = True,
) -> dict[str, Any]:
    """What kuberay mode creates for ``task``: its RayJob, or with an address, a batch Job.

    ``store_bundle=False`` (``flyray render``) writes nothing; the bundle's URI is the same.
    """
    from flyray.manifest.images import default_image_for
    from flyray.manifest.job import render_job
    from flyray.manifest.runmeta import apply_run_options
    from flyray.plugins.ray.request import ray_request

    request = ray_request(task)
    options = options or RunOptions()
    if request.address is None:
        return _render_rayjob(
            request,
            run_id=run_id,
            store=store,
            settings=settings,
            namespace=namespace,
            mode="kuberay",
            options=options,
            store_bundle=store_bundle,
        )
    _, command = _bundle_and_command(
        request, run_id=run_id, store=store, fetch=True, store_bundle=store_bundle
    )
    image = settings.image or default_image_for(request.image)
    job = render_job(
        request,
        run_id=run_id,
        command=command,
        image=image,
        namespace=namespace,
        store_secret=settings.store_secret,
    )
    return apply_run_options(
        job,
        labels=options.labels,
        annotations=options.annotations,
        service_account=options.service_account,
        env_vars=options.env_vars,
    )


def _render_rayjob(
    request: RayJobRequest,
    *,
    run_id: str,
    store: RunStore,
    settings: Settings,
    namespace: str | None,
    mode: str,
    options: RunOptions,
    store_bundle: bool,
) -> dict[str, Any]:
    """The run's RayJob: its bundle (stored if ``store_bundle``), entrypoint, image, options."""
    from flyray.config.ray_images import ray_version
    from flyray.executors.shipping import job_env_vars, job_py_modules
    from flyray.manifest.images import default_image_for
    from flyray.manifest.rayjob import render_rayjob
    from flyray.manifest.runmeta import apply_run_options

    bundle, command = _bundle_and_command(
        request, run_id=run_id, store=store, fetch=False, store_bundle=store_bundle
    )
    py_modules = job_py_modules(
        request, store=store, settings=settings, mode=mode, write=store_bundle
    )
    manifest = render_rayjob(
        request,
        run_id=run_id,
        entrypoint=command,
        image=settings.image or default_image_for(request.image),
        working_dir=bundle.uri,
        py_modules=py_modules,
        env_vars={**job_env_vars(settings, mode), **(options.env_vars or {})},
        namespace=namespace,
        kuberay_version=settings.kuberay_version,
        ray_version=ray_version(),
        mode=mode,
        store_secret=settings.store_secret if mode == "kuberay" else None,
    )
    return apply_run_options(
        manifest,
        labels=options.labels,
        annotations=options.annotations,
        service_account=options.service_account,
    )


def _bundle_and_command(
    request: RayJobRequest, *, run_id: str, store: RunStore, fetch: bool, store_bundle: bool
) -> tuple[Bundle, list[str]]:
    """The task's code bundle (stored if ``store_bundle``); the entrypoint's argv.

    ``fetch``: the entrypoint fetches and unpacks the bundle itself (no Ray job around it).
    """
    from flyray import entrypoint
    from flyray.store.bundle import create_bundle, pack_bundle

    if store_bundle:
        bundle = create_bundle(request.task_file, store)
    else:
        bundle, _ = pack_bundle(request.task_file, store)
    command = entrypoint.command(
        store=store.uri(),
        run_id=run_id,
        task_file=bundle.task_file,
        task_name=request.task_name,
        bundle=bundle.uri if fetch else None,
    )
    return bundle, command
