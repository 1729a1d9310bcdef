"""``KubeSession``: one Kubernetes API server and namespace, and the calls flyray makes there.

Configuration comes from a kubeconfig (``KUBECONFIG`` or ``~/.kube/config``, with an optional
context) or, inside a pod, from its service account. The namespace is the one asked for, else
the context's, else the pod's, else ``default``. Every call is retried on transient errors
(bounded, with backoff) and its failure is translated by ``kube.errors.translate``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from flyray.errors import ConfigError, SubmissionError
from flyray.executors.kuberay.errors import is_transient, retry_delay, status_of, translate
from flyray.manifest.labels import CLUSTER_LABEL, RUN_ID_LABEL

__all__ = [
    "JOBS",
    "MAX_ATTEMPTS",
    "RAYCLUSTERS",
    "RAYJOBS",
    "KubeSession",
    "ObjectKind",
    "kubeconfig_path",
]

T = TypeVar("T")


@dataclass(frozen=True)
class ObjectKind:
    """A namespaced resource of a grouped API, as ``CustomObjectsApi`` addresses it.

    That API is generic over ``/apis/<group>/<version>/namespaces/<ns>/<plural>``, so batch
    Jobs go through it as well as KubeRay's objects, and every call returns plain dicts.
    """

    kind: str
    group: str
    version: str
    plural: str

    def path(self, namespace: str) -> tuple[str, str, str, str]:
        return self.group, self.version, namespace, self.plural


RAYJOBS = ObjectKind("RayJob", "ray.io", "v1", "rayjobs")
RAYCLUSTERS = ObjectKind("RayCluster", "ray.io", "v1", "rayclusters")
JOBS = ObjectKind("Job", "batch", "v1", "jobs")
MAX_ATTEMPTS = 8  # tries of one API call (about 16 s of waits) before an error is reported
REQUEST_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds of an ordinary API call
DEFAULT_KUBECONFIG = "~/.kube/config"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeSession:
    """A connection to one API server in one namespace; a context manager that closes it."""

    def __init__(self, *, context: str | None = None, namespace: str | None = None) -> None:
        """Load the configuration now: a missing kubeconfig or context is a ConfigError."""
        from kubernetes import client

        configuration, default_namespace, self.context = _configuration(context)
        configuration.retries = False  # retried here, bounded, with backoff
        self.server: str = configuration.host
        self.namespace: str = namespace or default_namespace or "default"
        self.api = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.auth = client.AuthorizationV1Api(self.api)
        self.closed = False

    def __enter__(self) -> KubeSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool (idempotent)."""
        if not self.closed:
            self.closed = True
            self.api.close()

    def describe(self) -> str:
        """``context 'kind-dev' (https://...), namespace 'ml'`` for messages."""
        where = f"context {self.context!r} ({self.server})" if self.context else self.server
        return f"{where}, namespace {self.namespace!r}"

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, retried on transient errors; failures as flyray errors."""
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if attempt < MAX_ATTEMPTS and is_transient(exc):
                    time.sleep(retry_delay(attempt, exc))
                    continue
                error = translate(exc, what=what, server=self.server, attempts=attempt)
                if error is None:
                    raise
                raise error from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- objects of a grouped API (RayJobs, RayClusters, batch Jobs) ---------------------------

    def ref(self, kind: ObjectKind, name: str) -> str:
        """``RayJob ns/name``, as messages name an object."""
        return f"{kind.kind} {self.namespace}/{name}"

    def create(
        self, kind: ObjectKind, manifest: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Create the object (server-side dry run: only validate); returns what the server kept.

        Creating is retried like every call; when an earlier try reached the server, the retry
        meets a 409 and gets the object it made (same ``flyray.io/run-id``) back instead.
        """
        name = manifest["metadata"]["name"]
        what = f"create {self.ref(kind, name)}" + (" (server-side dry run)" if dry_run else "")
        options = {"dry_run": "All"} if dry_run else {}
        try:
            return self.call(
                what,
                self.custom.create_namespaced_custom_object,
                *kind.path(self.namespace),
                manifest,
                field_validation="Strict",
                **options,
            )
        except SubmissionError as error:
            if dry_run or status_of(error) != 409:
                raise
            existing = self.get(kind, name)
            if existing is None or _run_id(existing) != _run_id(manifest):
                raise
            return existing

    def get(self, kind: ObjectKind, name: str) -> dict[str, Any] | None:
        """The object as the server has it, or None when there is none."""
        try:
            return self.call(
                f"read {self.ref(kind, name)}",
                self.custom.get_namespaced_custom_object,
                *kind.path(self.namespace),
                name,
            )
        except SubmissionError as error:
            if status_of(error) == 404:
                return None
            raise

    def list_objects(self, kind: ObjectKind, **selectors: Any) -> dict[str, Any]:
        """The objects of ``kind`` matching ``field_selector`` / ``label_selector``, as a list."""
        return self.call(
            f"list {kind.plural}.{kind.group} in namespace {self.namespace!r}",
            self.custom.list_namespaced_custom_object,
            *kind.path(self.namespace),
            **selectors,
        )

    def patch(self, kind: ObjectKind, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the object (e.g. its annotations)."""
        return self.call(
            f"update {self.ref(kind, name)}",
            self.custom.patch_namespaced_custom_object,
            *kind.path(self.namespace),
            name,
            body,
        )

    def delete(self, kind: ObjectKind, name: str) -> bool:
        """Delete the object and, in the foreground, what it owns; False when already gone."""
        from kubernetes import client

        try:
            self.call(
                f"delete {self.ref(kind, name)}",
                self.custom.delete_namespaced_custom_object,
                *kind.path(self.namespace),
                name,
                propagation_policy="Foreground",
                body=client.V1DeleteOptions(propagation_policy="Foreground"),
            )
        except SubmissionError as error:
            if status_of(error) == 404:
                return False
            raise
        return True

    # -- pods --------------------------------------------------------------------------------

    def job_pods(self, name: str) -> list[Any]:
        """Pods of the batch Job ``name`` (label ``job-name=<name>``), oldest first."""
        pods = self.call(
            f"list the pods of Job {self.namespace}/{name}",
            self.core.list_namespaced_pod,
            self.namespace,
            label_selector=f"job-name={name}",
        )
        return sorted(
            pods.items,
            key=lambda pod: (str(pod.metadata.creation_timestamp or ""), pod.metadata.name),
        )

    def cluster_pods(self, cluster: str) -> list[dict[str, Any]]:
        """Pods of the RayCluster ``cluster`` (label ``ray.io/cluster``), as the API sends them."""
        answer = self.call(
            f"list the pods of RayCluster {self.namespace}/{cluster}",
            self.core.list_namespaced_pod,
            self.namespace,
            label_selector=f"{CLUSTER_LABEL}={cluster}",
            _preload_content=False,
        )
        return json.loads(answer.data).get("items") or []

    def pod_phase(self, pod: str) -> str | None:
        """The pod's phase (``Running``, ``Succeeded``...), or None when there is no such pod."""
        try:
            found = self.call(
                f"read pod {self.namespace}/{pod}",
                self.core.read_namespaced_pod,
                pod,
                self.namespace,
            )
        except SubmissionError as error:
            if status_of(error) == 404:
                return None
            raise
        return getattr(found.status, "phase", None) or "Unknown"

    def pod_log(self, pod: str) -> str:
        """The whole log of ``pod`` so far (its first container)."""
        return self.call(
            f"read the log of pod {self.namespace}/{pod}",
            self.core.read_namespaced_pod_log,
            pod,
            self.namespace,
        )

    def container_log(
        self, pod: str, container: str, *, tail_lines: int, previous: bool = False
    ) -> str:
        """The last ``tail_lines`` lines of one container's log (``previous``: of the instance
        before its last restart)."""
        return self.call(
            f"read the log of container {container} of pod {self.namespace}/{pod}",
            self.core.read_namespaced_pod_log,
            pod,
            self.namespace,
            container=container,
            tail_lines=tail_lines,
            previous=previous,
        )

    def follow_pod_log(self, pod: str, *, read_timeout: float) -> Any:
        """An open response streaming the log of ``pod`` as it grows (close it when done)."""
        return self.call(
            f"follow the log of pod {self.namespace}/{pod}",
            self.core.read_namespaced_pod_log,
            pod,
            self.namespace,
            follow=True,
            _preload_content=False,
            _request_timeout=(REQUEST_TIMEOUT[0], read_timeout),
        )


def kubeconfig_path() -> str:
    """``KUBECONFIG`` (a list of files, like kubectl) or ``~/.kube/config``, read now."""
    return os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG


def _configuration(context: str | None) -> tuple[Any, str | None, str | None]:
    """(client configuration, the context's namespace, the context's name)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    path = kubeconfig_path()
    files = [Path(p).expanduser() for p in path.split(os.pathsep) if p]
    if any(file.is_file() for file in files):
        chosen = _context(path, context)
        try:
            config.load_kube_config(
                config_file=path,
                context=chosen["name"],
                client_configuration=configuration,
                persist_config=False,
            )
        except (config.ConfigException, OSError, ValueError) as exc:
            raise ConfigError("kubeconfig", path, f"must be a usable kubeconfig ({exc})") from exc
        return configuration, chosen.get("context", {}).get("namespace"), chosen["name"]
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        if context:
            raise ConfigError(
                "context", context, f"needs a kubeconfig, and there is none at {path}"
            )
        config.load_incluster_config(client_configuration=configuration)
        namespace_file = SERVICE_ACCOUNT / "namespace"
        namespace = namespace_file.read_text().strip() if namespace_file.is_file() else None
        return configuration, namespace, None
    raise ConfigError(
        "kubeconfig",
        path,
        "does not exist and flyray is not running in a pod: set KUBECONFIG to your "
        "cluster's kubeconfig, or write ~/.kube/config (e.g. with your cloud's "
        "`get-credentials` command)",
    )


def _context(path: str, context: str | None) -> dict[str, Any]:
    """The kubeconfig context named ``context``, else the current one."""
    from kubernetes import config

    try:
        contexts, current = config.list_kube_config_contexts(config_file=path)
    except (config.ConfigException, OSError, ValueError) as exc:
        if context is None and "current-context" in str(exc):
            raise ConfigError(
                "context", None, f"must be given (--context): {path} has no current context"
            ) from exc
        raise ConfigError("kubeconfig", path, f"must be a valid kubeconfig ({exc})") from exc
    if context is None:
        return current
    for candidate in contexts:
        if candidate["name"] == context:
            return candidate
    names = ", ".join(sorted(c["name"] for c in contexts)) or "none"
    raise ConfigError("context", context, f"is not a context in {path} (contexts: {names})")


def _run_id(rayjob: dict[str, Any]) -> str | None:
    return (rayjob.get("metadata", {}).get("labels") or {}).get(RUN_ID_LABEL)
