"""Checks before a RayJob is created, each failing with its own error and what to do about it.

1. the run store is reachable from the cluster (not a folder here, unless said to be shared);
2. the API server serves ``rayjobs.ray.io/v1`` (KubeRay is installed; not asked for a task that
   runs as a plain batch Job on an existing Ray cluster);
3. the user may create, watch and delete the RayJob (or Job) and read pods and their logs (RBAC);
4. the images the pods will run are printed;
5. a server-side dry-run create, so the API server's own validation speaks first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flyray.errors import ConfigError, SubmissionError
from flyray.executors.kuberay.errors import status_of
from flyray.executors.kuberay.session import JOBS, RAYCLUSTERS, RAYJOBS, KubeSession, ObjectKind
from flyray.manifest.labels import CLUSTER_LABEL
from flyray.store.runstore import RunStore

__all__ = [
    "INSTALL_KUBERAY",
    "access_needed",
    "check_access",
    "check_crd",
    "check_run_store",
    "images",
    "preflight",
]

INSTALL_KUBERAY = (
    "install the KubeRay operator: `helm repo add kuberay https://ray-project.github.io/"
    "kuberay-helm/` then `helm install kuberay-operator kuberay/kuberay-operator`"
)
GROUP, VERSION, PLURAL = RAYJOBS.group, RAYJOBS.version, RAYJOBS.plural


def access_needed(kind: ObjectKind, *, reuse: bool = False) -> list[tuple[str, str, str, str]]:
    """(verb, API group, resource, subresource) that a run as a ``kind`` object uses.

    ``reuse``: the run also finds, creates, stamps and deletes reusable RayClusters.
    """
    cluster_verbs = ("get", "list", "create", "patch", "delete") if reuse else ()
    return [
        *((verb, kind.group, kind.plural, "") for verb in ("create", "watch", "delete")),
        *((verb, RAYCLUSTERS.group, RAYCLUSTERS.plural, "") for verb in cluster_verbs),
        ("get", "", "pods", ""),
        ("list", "", "pods", ""),
        ("get", "", "pods", "log"),
    ]


def preflight(
    session: KubeSession, manifest: dict[str, Any], *, report: Callable[[str], None]
) -> None:
    """Every check that needs the cluster, then the dry run; raises at the first failure.

    ``manifest`` is a RayJob, or the batch Job of a task that uses an existing Ray cluster.
    """
    kind = JOBS if manifest["kind"] == JOBS.kind else RAYJOBS
    report(f"Kubernetes: {session.describe()}")
    if kind is RAYJOBS:
        check_crd(session)
    check_access(session, kind, reuse="clusterSelector" in manifest["spec"])
    report(f"image: {', '.join(images(manifest))}")
    session.create(kind, manifest, dry_run=True)
    served = "KubeRay serves RayJobs, " if kind is RAYJOBS else ""
    report(f"preflight passed: {served}access allowed, dry run accepted")


def check_run_store(store: RunStore, *, shared: bool) -> None:
    """Refuse a run store the cluster's pods cannot reach, unless the user says it is shared."""
    if shared:
        return
    if store.is_local:
        raise ConfigError(
            "run_store",
            store.root,
            "is a folder on this machine, and the cluster's pods read the code and inputs and "
            "write the outputs there: use object storage they can reach (--run-store "
            "s3://BUCKET/flyray or gs://BUCKET/flyray), or, if this path is shared storage "
            "mounted at the same path in every pod, say so with --shared-run-store "
            "(FLYRAY_SHARED_RUN_STORE=1)",
        )
    if store.uri().startswith("memory://"):
        raise ConfigError(
            "run_store",
            store.root,
            "lives in this process's memory, which the cluster's pods cannot read: use "
            "s3://BUCKET/flyray or gs://BUCKET/flyray",
        )


def check_crd(session: KubeSession) -> None:
    """The API server must serve ``rayjobs`` in ``ray.io/v1``: KubeRay >= 1.0 is installed."""
    try:
        found = session.call(
            f"discover {GROUP}/{VERSION}", session.custom.get_api_resources, GROUP, VERSION
        )
    except SubmissionError as error:
        if status_of(error) != 404:
            raise
        found = None
    names = {resource.name for resource in getattr(found, "resources", None) or []}
    if PLURAL in names:
        return
    others = _served_versions(session)
    if others:
        raise SubmissionError(
            f"the KubeRay operator at {session.describe()} is too old: the API server serves "
            f"{GROUP} in {', '.join(others)} but not rayjobs in {VERSION} (KubeRay >= 1.0); "
            f"upgrade it, or {INSTALL_KUBERAY}"
        )
    raise SubmissionError(
        f"KubeRay is not installed at {session.describe()}: the API server has no "
        f"rayjobs.{GROUP}/{VERSION} (the RayJob CRD); {INSTALL_KUBERAY}"
    )


def check_access(session: KubeSession, kind: ObjectKind = RAYJOBS, *, reuse: bool = False) -> None:
    """SelfSubjectAccessReviews for every verb a run uses; one error listing all refusals."""
    refused = [
        f"{verb} {_resource_name(group, resource, subresource)}"
        for verb, group, resource, subresource in access_needed(kind, reuse=reuse)
        if not _allowed(session, verb, group, resource, subresource)
    ]
    if refused:
        resource = _resource_name(kind.group, kind.plural, "")
        raise SubmissionError(
            f"not allowed in {session.describe()}: {', '.join(refused)}; a kuberay run needs "
            f"a Role there granting {resource}: create, get, list, watch, delete; pods: "
            "get, list; pods/log: get (ask a cluster admin; check with `kubectl auth can-i "
            f"create {resource} -n {session.namespace}`)"
        )


def images(manifest: dict[str, Any]) -> list[str]:
    """The Ray containers' images, head first, each once (a batch Job: its pod's)."""
    if manifest["kind"] == JOBS.kind:
        return [manifest["spec"]["template"]["spec"]["containers"][0].get("image", "?")]
    if "rayClusterSpec" not in manifest["spec"]:  # a reused cluster has its images already
        selected = manifest["spec"]["clusterSelector"].get(CLUSTER_LABEL, "?")
        return [f"those of RayCluster {selected}"]
    cluster = manifest["spec"]["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]
    found = [group["template"]["spec"]["containers"][0].get("image", "?") for group in groups]
    return list(dict.fromkeys(found))


def _allowed(session: KubeSession, verb: str, group: str, resource: str, subresource: str) -> bool:
    from kubernetes import client

    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                namespace=session.namespace,
                verb=verb,
                group=group,
                resource=resource,
                subresource=subresource or None,
            )
        )
    )
    answer = session.call(
        f"check whether you may {verb} {_resource_name(group, resource, subresource)}",
        session.auth.create_self_subject_access_review,
        review,
    )
    return bool(answer.status and answer.status.allowed)


def _served_versions(session: KubeSession) -> list[str]:
    """The versions of the ``ray.io`` group the server serves (none: KubeRay is absent)."""
    from kubernetes import client

    groups = session.call("list the API groups", client.ApisApi(session.api).get_api_versions)
    for group in groups.groups or []:
        if group.name == GROUP:
            return [version.version for version in group.versions or []]
    return []


def _resource_name(group: str, resource: str, subresource: str) -> str:
    name = f"{resource}.{group}" if group else resource
    return f"{name}/{subresource}" if subresource else name
