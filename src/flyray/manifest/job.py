"""The batch ``Job`` of a Ray task that uses an existing cluster (``RayJobConfig.address``).

The spec: with an address no RayJob is created; ``RayFunctionTask.pre`` passes it to
``ray.init``. In ``kuberay`` mode such a task still runs in Kubernetes, as one pod with the
environment's image: flyray's entrypoint fetches the code bundle, connects to the address
through the Ray Client and ships the code to that cluster's workers as its working_dir.

Pure like ``render_rayjob``: the same input gives the same dict, ``None`` dropped, keys sorted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from flyray.errors import ManifestError
from flyray.manifest.images import container_image
from flyray.manifest.pod import resource_requirements
from flyray.manifest.rayjob import add_secret_files, clean, run_metadata
from flyray.task.base import FunctionTask

__all__ = ["ADDRESS_ANNOTATION", "CONTAINER_NAME", "render_job"]

API_VERSION = "batch/v1"
KIND = "Job"
CONTAINER_NAME = "flyray-task"
ADDRESS_ANNOTATION = "flyray.io/ray-address"  # marks the Jobs flyray creates itself


def render_job(
    task: FunctionTask,
    *,
    run_id: str,
    command: Sequence[str],
    image: str,
    namespace: str | None = None,
) -> dict[str, Any]:
    """A ``batch/v1`` Job whose one pod runs ``command`` against the task's Ray address.

    ``image`` is used unless the environment names its own (``container_image``). The task's
    ``retries`` become the Job's ``backoffLimit`` (a new pod each time) and its ``timeout`` the
    Job's ``activeDeadlineSeconds``, which Kubernetes counts over every attempt together. The
    Image's env vars go on the container; its pip packages would need a build (no Ray job).
    """
    address = getattr(task.plugin_config, "address", None)
    if address is None:
        raise ManifestError(
            f"task {task.name!r} has no RayJobConfig.address: it runs as a RayJob on a "
            "cluster of its own, not as a Job that connects to an existing cluster"
        )
    metadata = run_metadata(task, run_id=run_id, namespace=namespace)
    metadata["annotations"][ADDRESS_ANNOTATION] = address
    env_vars = {**_image_env_vars(task), **(task.env.env_vars or {})}
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": container_image(task.env.image) or image,
        "command": list(command),
        "env": [
            *({"name": k, "value": v} for k, v in sorted(env_vars.items())),
            *(s.env_entry() for s in task.env.secrets if s.env_var is not None),
        ]
        or None,
        "resources": resource_requirements(task.env.resources, None) or None,
    }
    pod_spec = {
        "restartPolicy": "Never",
        "serviceAccountName": task.service_account,
        "containers": [container],
    }
    add_secret_files(pod_spec, task.env.secrets)
    spec = {
        "backoffLimit": task.retries,
        "activeDeadlineSeconds": None if task.timeout is None else math.ceil(task.timeout),
        "template": {
            "metadata": {"labels": dict(metadata["labels"])},
            "spec": pod_spec,
        },
    }
    manifest = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
    return clean(manifest)


def _image_env_vars(task: FunctionTask) -> dict[str, str]:
    """The Image's env vars; its packages refused: this pod is no Ray job with a runtime env."""
    from flyray.manifest.image_env import image_runtime_env

    where = f"TaskEnvironment {task.env.name!r}"
    env = image_runtime_env(task.env.image, mode="kuberay", where=where)
    if "pip" in env:
        raise ManifestError(
            f"{where}: a task on an existing cluster (RayJobConfig.address) runs in one pod "
            "with the image as it is, so the Image's pip packages cannot be installed: build "
            "an image with them and pass Image.from_base('registry/image:tag')"
        )
    return env.get("env_vars", {})
