"""Reusable RayClusters on KubeRay: found by the hash of their spec, deleted when idle.

A run of a task with ``reuse_cluster=True`` finds flyray's RayCluster labelled with the hash of
its cluster spec, or creates it, and stamps it with the time it was last used and its idle
timeout (annotations, so any machine's flyray sees them). ``collect_idle`` deletes the clusters
whose idle timeout has passed and that no unfinished RayJob runs on: ``flyray cluster gc``, and
every reusing run before it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flyray.errors import SubmissionError
from flyray.executors.kuberay.session import RAYCLUSTERS, RAYJOBS, KubeSession
from flyray.manifest.labels import (
    CLUSTER_HASH_LABEL,
    IDLE_TIMEOUT_ANNOTATION,
    LAST_USED_ANNOTATION,
    MANAGED_BY_SELECTOR,
    SELECTED_CLUSTER_LABEL,
)

__all__ = [
    "collect_idle",
    "ensure_cluster",
    "idle_until",
    "list_clusters",
    "touch",
]

_UNFINISHED = ("", "Initializing", "Running", "Retrying", "Suspending", "Suspended", "Waiting")


def ensure_cluster(
    session: KubeSession,
    cluster: dict[str, Any],
    *,
    idle_timeout: float,
    report: Callable[[str], None],
) -> str:
    """The name of flyray's RayCluster of ``cluster``'s spec, created when there is none.

    Its name holds the environment and the spec's hash, so finding it is a ``get``.
    """
    name = cluster["metadata"]["name"]
    digest = cluster["metadata"]["labels"][CLUSTER_HASH_LABEL]
    found = session.get(RAYCLUSTERS, name)
    if found is not None and found["metadata"].get("deletionTimestamp"):
        raise SubmissionError(
            f"{session.ref(RAYCLUSTERS, name)} is being deleted (idle, or `flyray cluster "
            "down`); run again once it is gone"
        )
    if found is not None:
        report(f"reusing {session.ref(RAYCLUSTERS, name)} (same cluster spec, hash {digest})")
    else:
        session.create(RAYCLUSTERS, cluster)
        report(f"created reusable {session.ref(RAYCLUSTERS, name)} (hash {digest})")
    touch(session, name, idle_timeout=idle_timeout)
    return name


def touch(session: KubeSession, name: str, *, idle_timeout: float) -> None:
    """Stamp the cluster as used now, with its idle timeout."""
    annotations = {
        LAST_USED_ANNOTATION: _now().isoformat(timespec="seconds"),
        IDLE_TIMEOUT_ANNOTATION: f"{idle_timeout:g}",
    }
    session.patch(RAYCLUSTERS, name, {"metadata": {"annotations": annotations}})


def list_clusters(session: KubeSession) -> list[dict[str, Any]]:
    """flyray's reusable RayClusters in the session's namespace."""
    selector = f"{MANAGED_BY_SELECTOR},{CLUSTER_HASH_LABEL}"
    return session.list_objects(RAYCLUSTERS, label_selector=selector).get("items") or []


def idle_until(cluster: dict[str, Any]) -> datetime | None:
    """When the cluster's idle timeout ends, from its annotations (None: unknown)."""
    annotations = cluster["metadata"].get("annotations") or {}
    try:
        last = datetime.fromisoformat(annotations[LAST_USED_ANNOTATION])
        timeout = float(annotations[IDLE_TIMEOUT_ANNOTATION])
    except (KeyError, ValueError):
        return None
    return datetime.fromtimestamp(last.timestamp() + timeout, timezone.utc)


def collect_idle(session: KubeSession, *, report: Callable[[str], None]) -> list[str]:
    """Delete the reusable clusters past their idle timeout with no unfinished RayJob on them."""
    deleted = []
    now = _now()
    for cluster in list_clusters(session):
        name = cluster["metadata"]["name"]
        until = idle_until(cluster)
        if cluster["metadata"].get("deletionTimestamp") or until is None or until > now:
            continue
        if _busy(session, name):
            continue
        if session.delete(RAYCLUSTERS, name):
            deleted.append(name)
            ref = session.ref(RAYCLUSTERS, name)
            report(f"deleted {ref}: its idle timeout ended {until:%Y-%m-%d %H:%M:%S} UTC")
    return deleted


def _busy(session: KubeSession, cluster: str) -> bool:
    """True while a RayJob that selects ``cluster`` has not finished."""
    jobs = session.list_objects(RAYJOBS, label_selector=f"{SELECTED_CLUSTER_LABEL}={cluster}")
    return any(
        (job.get("status") or {}).get("jobDeploymentStatus", "") in _UNFINISHED
        for job in jobs.get("items") or []
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)
