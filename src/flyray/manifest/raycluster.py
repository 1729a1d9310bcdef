"""A reusable RayCluster (``RayJobConfig(reuse_cluster=True)``) and the RayJobs that select it.

The cluster is the rendered RayJob's ``rayClusterSpec`` as a RayCluster of its own, named and
labelled by a hash of that spec, so a later run with the same cluster finds it by label. Each
run is then a RayJob with ``clusterSelector`` instead of ``rayClusterSpec``. KubeRay's rules for
such a RayJob: it does not own the cluster, so ``shutdownAfterJobFinishes`` and
``ttlSecondsAfterFinished`` do not apply (flyray's idle timeout does), and it is not retried
(``backoffLimit`` would need a new cluster per attempt). Pure functions, like ``render_rayjob``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from flyray.config.names import dns1123_name
from flyray.errors import ManifestError
from flyray.manifest.kuberay import API_VERSION
from flyray.manifest.labels import (
    CLUSTER_HASH_LABEL,
    CLUSTER_LABEL,
    ENVIRONMENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SELECTED_CLUSTER_LABEL,
    TASK_NAME_ANNOTATION,
)
from flyray.manifest.serialization import clean

__all__ = ["cluster_hash", "render_raycluster", "select_cluster"]

MAX_NAME_LENGTH = 40  # KubeRay allows 53, and names Services and pods after the cluster
_HASH_LENGTH = 10


def cluster_hash(rayjob: dict[str, Any]) -> str:
    """The hash of the RayJob's ``rayClusterSpec``: equal clusters, equal hashes."""
    spec = _cluster_spec(rayjob)
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_LENGTH]


def render_raycluster(rayjob: dict[str, Any]) -> dict[str, Any]:
    """The RayCluster of a rendered RayJob: ``<environment>-<hash>``, labelled to be found."""
    metadata = rayjob["metadata"]
    task_name = metadata["annotations"][TASK_NAME_ANNOTATION]
    environment = dns1123_name(task_name.rsplit(".", 1)[0], max_length=63)
    digest = cluster_hash(rayjob)
    prefix = environment[: MAX_NAME_LENGTH - _HASH_LENGTH - 1].rstrip("-")
    return clean(
        {
            "apiVersion": API_VERSION,
            "kind": "RayCluster",
            "metadata": {
                "name": f"{prefix}-{digest}",
                "namespace": metadata.get("namespace"),
                "labels": {
                    MANAGED_BY_LABEL: MANAGED_BY,
                    ENVIRONMENT_LABEL: environment,
                    CLUSTER_HASH_LABEL: digest,
                },
            },
            "spec": copy.deepcopy(_cluster_spec(rayjob)),
        }
    )


def select_cluster(rayjob: dict[str, Any], cluster: str) -> dict[str, Any]:
    """The RayJob made to run on the RayCluster ``cluster`` (``clusterSelector``)."""
    spec = copy.deepcopy(rayjob["spec"])
    if spec.get("backoffLimit"):
        task = rayjob["metadata"]["annotations"][TASK_NAME_ANNOTATION]
        raise ManifestError(
            f"task {task!r} has retries={spec['backoffLimit']} and reuse_cluster=True: KubeRay "
            "retries a RayJob on a new cluster, which a reused cluster cannot be; set "
            "retries=0 or drop reuse_cluster"
        )
    for key in ("rayClusterSpec", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished"):
        spec.pop(key, None)
    spec.pop("backoffLimit", None)
    spec["clusterSelector"] = {CLUSTER_LABEL: cluster}
    metadata = copy.deepcopy(rayjob["metadata"])
    metadata["labels"][SELECTED_CLUSTER_LABEL] = cluster
    return clean({**rayjob, "metadata": metadata, "spec": spec})


def _cluster_spec(rayjob: dict[str, Any]) -> dict[str, Any]:
    spec = rayjob.get("spec") or {}
    if "rayClusterSpec" not in spec:
        raise ManifestError("the RayJob has no rayClusterSpec to make a reusable cluster of")
    return spec["rayClusterSpec"]
