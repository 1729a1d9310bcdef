"""The batch ``Job`` of a Ray task that uses an existing cluster (``RayJobConfig.address``).

The spec: with an address no RayJob is created; ``RayFunctionTask.pre`` passes it to
``ray.init``. In ``kuberay`` mode such a task still runs in Kubernetes, as one pod with the
environment's image: flyray's entrypoint fetches the code bundle, connects to the address
through the Ray Client and ships the code to that cluster's workers as its working_dir.

Pure like ``render_rayjob`` and read from the same ``RayJobRequest``: the same input gives the
same dict, ``None`` dropped, keys sorted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from flyray.errors import ManifestError
from flyray.manifest.images import container_image
from flyray.manifest.labels import ADDRESS_ANNOTATION
from flyray.manifest.names import run_metadata
from flyray.manifest.pod import resource_requirements
from flyray.manifest.request import RayJobRequest
from flyray.manifest.secrets import add_env_from_secret, add_secret_files
from flyray.manifest.serialization import clean

__all__ = ["CONTAINER_NAME", "render_job"]

API_VERSION = "batch/v1"
KIND = "Job"
CONTAINER_NAME = "flyray-task"


def render_job(
    request: RayJobRequest,
    *,
    run_id: str,
    command: Sequence[str],
    image: str,
    namespace: str | None = None,
    store_secret: str | None = None,
) -> dict[str, Any]:
    """A ``batch/v1`` Job whose one pod runs ``command`` against the task's Ray address.

    ``image`` is used unless the environment names its own (``container_image``). The task's
    ``retries`` become the Job's ``backoffLimit`` (a new pod each time) and its ``timeout`` the
    Job's ``activeDeadlineSeconds``, which Kubernetes counts over every attempt together. The
    Image's env vars go on the container; its pip packages would need a build (no Ray job).
    ``store_secret``: a Secret the pod gets as ``envFrom`` (the run store's credentials).
    """
    address = request.address
    if address is None:
        raise ManifestError(
            f"task {request.task_name!r} has no RayJobConfig.address: it runs as a RayJob on a "
            "cluster of its own, not as a Job that connects to an existing cluster"
        )
    metadata = run_metadata(request, run_id=run_id, namespace=namespace)
    metadata["annotations"][ADDRESS_ANNOTATION] = address
    env_vars = {**_image_env_vars(request), **request.env_vars}
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": container_image(request.image) or image,
        "command": list(command),
        "env": [
            *({"name": k, "value": v} for k, v in sorted(env_vars.items())),
            *(s.env_entry() for s in request.secrets if s.env_var is not None),
        ]
        or None,
        "resources": resource_requirements(request.resources, None) or None,
    }
    add_env_from_secret(container, store_secret)
    pod_spec = {
        "restartPolicy": "Never",
        "serviceAccountName": request.service_account,
        "containers": [container],
    }
    add_secret_files(pod_spec, request.secrets)
    spec = {
        "backoffLimit": request.retries,
        "activeDeadlineSeconds": None if request.timeout is None else math.ceil(request.timeout),
        "template": {
            "metadata": {"labels": dict(metadata["labels"])},
            "spec": pod_spec,
        },
    }
    manifest = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
    return clean(manifest)


def _image_env_vars(request: RayJobRequest) -> dict[str, str]:
    """The Image's env vars; its packages refused: this pod is no Ray job with a runtime env."""
    from flyray.manifest.image_env import image_runtime_env

    where = f"TaskEnvironment {request.env_name!r}"
    env = image_runtime_env(request.image, mode="kuberay", where=where)
    if "pip" in env:
        raise ManifestError(
            f"{where}: a task on an existing cluster (RayJobConfig.address) runs in one pod "
            "with the image as it is, so the Image's pip packages cannot be installed: build "
            "an image with them and pass Image.from_base('registry/image:tag')"
        )
    return env.get("env_vars", {})
