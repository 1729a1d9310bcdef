"""FakeKube: TEST CODE. A stand-in for a Kubernetes API server with the KubeRay operator.

There is no container engine on the machines these tests run on, so no kind or minikube. This
server speaks the subset of the Kubernetes REST API that flyray's kuberay executor uses, over
plain HTTP on 127.0.0.1 with a bearer token, so that the official ``kubernetes`` client works
against it unchanged (``kubeconfig()`` writes its config). It plays the KubeRay operator with
real Ray processes (``tests/k8s/fake_operator.py``). It is not a product and not a general fake.

Emulated:

- discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>[/<version>]``;
  the ``rayjobs.ray.io`` and ``rayclusters.ray.io`` CRDs (with KubeRay v1.7.0's schemas);
  ``SelfSubjectAccessReview``;
- ``rayjobs`` and ``rayclusters`` (ray.io/v1, namespaced): create (with ``dryRun=All``), get,
  list, watch, merge-patch and JSON-patch, update (PUT, with resourceVersion conflicts), the
  ``status`` subresource, delete (finalizers honoured); ``batch/v1`` ``jobs`` the same way
  (checked against the pod template schema KubeRay's CRD carries; the Job controller and kubelet
  are played by ``tests/k8s/fake_jobs.py``); read-only ``pods`` (with ``log``, ``follow=true``
  streaming) and ``namespaces``; Secrets only as ``secrets``, a dict the test fills and the
  fake kubelet reads (no Secret API);
- list and watch with ``labelSelector`` (``=``, ``==``, ``!=``, exists, ``!key``, ``in``,
  ``notin``) and ``fieldSelector`` (``=``, ``!=`` on any dotted path, e.g. ``metadata.name``);
- watch: newline-delimited JSON events from a resourceVersion (none or "0": the current objects
  as ADDED first), ``timeoutSeconds``, 410 Gone (an ERROR event, or HTTP 410) from before the
  bounded event history (``max_events``);
- on create and update: nulls pruned, schema defaults filled, then KubeRay's schema checked in
  STRICT mode (an unknown field is 422 Invalid; the real server would drop it or, with
  ``fieldValidation=Strict``, answer 400), object metadata checked (DNS-1123 name, labels);
  the operator-only rules (``tests/manifest/kuberay.py``) pass here and end ``ValidationFailed``;
- errors as ``Status`` objects: 401, 403, 404, 405, 409 AlreadyExists/Conflict, 410, 415, 422.

Faults a test sets at any time: ``drop_watches()``, ``drop_log_streams()``, ``fail_next()``,
``gone_below()``, ``stuck_initializing``, ``no_crd``, ``forbid``. Every request is logged in
``requests``.

Not emulated: TLS and any auth but one token, RBAC beyond ``forbid``, server-side apply,
strategic merge patch, ``limit``/``continue`` paging, BOOKMARK events, watch events for objects
that stop/start matching a selector (each event is filtered on its own object), ``timestamps``
and ``sinceSeconds`` on logs, other resources (services, events, configmaps), admission webhooks,
CEL rules, and a background garbage collector (dependents go at once with their owner).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hmac
import json
import logging
import re
import secrets
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from tests.k8s.fake_jobs import FakeJobController
from tests.k8s.fake_operator import FakeKubeRay, split_violations
from tests.k8s.store import (
    DNS1123_SUBDOMAIN,
    JOBS,
    NAMESPACES,
    PODS,
    RAYCLUSTERS,
    RAYJOBS,
    RESOURCES,
    ApiError,
    Resource,
    Store,
    WatchEvent,
    fill_metadata,
    parse_field_selector,
    parse_label_selector,
    random_suffix,
    timestamp,
)
from tests.manifest.kuberay import SHARED, strict_schema

__all__ = ["FakeKube", "RequestRecord"]

log = logging.getLogger(__name__)

KUBE_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0+fakekube",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T07:28:49Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
USER = "fake-user"
_WAKE_S = 1.0  # how often a watch or log stream re-checks its client and the faults
_CORE = re.compile(
    r"^/api/(?P<version>v1)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$"
)
_GROUPED = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$"
)
_CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
_SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
_GROUPS = {  # group -> its versions' resources: (name, kind, namespaced, verbs)
    "apiextensions.k8s.io": [
        ("customresourcedefinitions", "CustomResourceDefinition", False, ["get", "list"])
    ],
    "authorization.k8s.io": [
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview", False, ["create"])
    ],
}
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SERVER_SET = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)


@dataclass
class RequestRecord:
    """One request as the server saw it; ``status`` is the HTTP code it answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any = None
    status: int | None = None


@dataclass
class _Fault:
    remaining: int
    status: int
    retry_after: int | None
    method: str | None
    path: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method in (None, method)) and (self.path is None or self.path in path)


class FakeKube:
    """A fake Kubernetes API server with a fake KubeRay operator: TEST CODE, see the module doc.

    Use as a context manager (or ``start()`` / ``close()``); ``close()`` stops every Ray node
    the operator started. Faults can be set at any time; see each attribute and method.
    """

    def __init__(
        self,
        *,
        namespace: str = "default",
        other_namespaces: tuple[str, ...] = (),
        token: str | None = None,
        max_events: int = 1000,
    ) -> None:
        self.namespace = namespace
        self.token = token or secrets.token_hex(16)
        self.store = Store(max_events=max_events)
        self.requests: list[RequestRecord] = []
        self.kubeconfig_path: Path | None = None
        # -- faults --
        self.stuck_initializing = False  # RayJobs stay Initializing: pods unschedulable, no Ray
        self.no_crd = False  # the KubeRay CRDs are not installed: ray.io is 404 everywhere
        self.forbid: set[tuple[str, str]] = set()  # (verb, resource[/subresource]) denied: 403
        self.status_check_timeout = 10.0  # s of Ray not answering before JobStatusCheckTimeout
        self._faults: list[_Fault] = []
        self._gone_below = 0
        self._gone_http = False
        self._watch_drops = 0
        self._watch_drop_rv = 0  # the store's version at the last drop
        self._abrupt_drops = False
        self._log_drops = 0
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}  # (ns, name) -> data
        # -- state --
        self.stopping = False
        self.operator = FakeKubeRay(self)
        self.jobs = FakeJobController(self)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._crds = {res.qualified: self._crd(res) for res in (RAYJOBS, RAYCLUSTERS)}
        for ns in dict.fromkeys((namespace, *other_namespaces)):
            self.store.create(NAMESPACES, None, _namespace(ns))

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeKube:
        """Listen on a free port of 127.0.0.1 and serve in a background thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.kube = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="fake-kube"
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """End every stream, stop the operator (and every Ray node), stop serving."""
        if self.stopping:
            return
        self.stopping = True
        with self.store.changed:
            self.store.changed.notify_all()
        self.operator.close()
        self.jobs.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def kubeconfig(self, path: str | Path) -> Path:
        """Write a kubeconfig (context "fake", namespace ``namespace``) to ``path``."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": USER, "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": USER, "namespace": self.namespace},
                }
            ],
            "current-context": "fake",
        }
        self.kubeconfig_path = Path(path)
        self.kubeconfig_path.write_text(yaml.safe_dump(config, sort_keys=False))
        return self.kubeconfig_path

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for this server (from ``kubeconfig_path``)."""
        from kubernetes import config

        assert self.kubeconfig_path is not None, "write kubeconfig() first"
        return config.new_client_from_config(config_file=str(self.kubeconfig_path))

    # -- faults ----------------------------------------------------------------------------------

    def drop_watches(self, *, abrupt: bool = False) -> None:
        """End every open watch stream now: cleanly (as on a server timeout) or by a reset.

        A dropped stream carries no event that happened after the drop, however late its
        thread wakes: the client must resume to see them.
        """
        with self.store.changed:
            self._watch_drops += 1
            self._watch_drop_rv = self.store.rv
            self._abrupt_drops = abrupt
            self.store.changed.notify_all()

    def drop_log_streams(self) -> None:
        """End every open ``follow=true`` log stream now (as a kubelet restart would)."""
        with self.store.changed:
            self._log_drops += 1
            self.store.changed.notify_all()

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        *,
        retry_after: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """The next ``n`` requests (of ``method``, whose path contains ``path``) get ``status``.

        A 429 carries ``Retry-After`` (``retry_after`` seconds, 1 by default).
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        with self.store.lock:
            self._faults.append(_Fault(n, status, retry_after, method, path))

    def gone_below(self, rv: int, *, http: bool = False) -> None:
        """Watches from a resourceVersion below ``rv`` get 410 Gone (an ERROR event, or HTTP)."""
        self._gone_below, self._gone_http = int(rv), http

    @property
    def max_events(self) -> int:
        """How many watch events are kept; a watch from before them gets 410 Gone."""
        return self.store.max_events

    @max_events.setter
    def max_events(self, value: int) -> None:
        self.store.max_events = value
        self.store.trim()

    # -- inspection ------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion (every write takes the next one)."""
        return self.store.rv

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of every stored object of ``kind`` ("RayJob", "rayjobs", "pods", ...)."""
        return self.store.list(_resource(kind), namespace)[0]

    def get_object(
        self, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """A copy of one object, or None."""
        return self.store.get(_resource(kind), namespace or self.namespace, name)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Wait until ``predicate()`` is truthy, re-checked on every write; its last value."""
        return self.store.wait_for(predicate, timeout)

    @property
    def started_cluster_dirs(self) -> list[Path]:
        """The root dir of every Ray cluster the operator started (processes mention it)."""
        return list(self.operator.started_cluster_dirs)

    @property
    def operator_errors(self) -> list[str]:
        """Unexpected exceptions in the fake operator and Job controller: bugs of the fake."""
        return [*self.operator.errors, *self.jobs.errors]

    def ray_cluster(self, rayjob: str, namespace: str | None = None) -> Any:
        """The newest ``LocalRayCluster`` started for a RayJob, or None."""
        return self.operator.ray_cluster(rayjob, namespace or self.namespace)

    # -- request handling ------------------------------------------------------------------------

    def handle(self, h: _Handler) -> None:
        """Answer one HTTP request (called by the handler thread)."""
        url = urlsplit(h.path)
        record = RequestRecord(
            h.command, url.path.rstrip("/") or "/", dict(parse_qsl(url.query, True))
        )
        self.requests.append(record)
        try:
            record.body = _read_body(h)
            self._authenticate(h)
            self._inject_fault(record)
            result = self._dispatch(h, record)
            if result is not None:
                h.send_json(result[0], result[1])
                record.status = result[0]
        except ApiError as exc:
            record.status = exc.code
            h.send_error_status(exc)
        except OSError:  # the client went away
            h.close_connection = True
        except Exception as exc:
            log.exception("FakeKube failed on %s %s", h.command, h.path)
            record.status = 500
            h.send_error_status(
                ApiError(500, "InternalError", f"FakeKube bug: {type(exc).__name__}: {exc}")
            )

    def _authenticate(self, h: _Handler) -> None:
        given = h.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            raise ApiError(401, "Unauthorized", "Unauthorized")

    def _inject_fault(self, record: RequestRecord) -> None:
        with self.store.lock:
            fault = next((f for f in self._faults if f.matches(record.method, record.path)), None)
            if fault is None:
                return
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        reason, message = {
            429: ("TooManyRequests", "Too many requests, please try again later."),
            503: ("ServiceUnavailable", "FakeKube: injected failure (service unavailable)"),
            504: ("Timeout", "FakeKube: injected failure (timeout)"),
        }.get(fault.status, ("InternalError", f"FakeKube: injected failure ({fault.status})"))
        raise ApiError(fault.status, reason, message, headers=headers)

    def _dispatch(self, h: _Handler, record: RequestRecord) -> tuple[int, Any] | None:
        method, path = record.method, record.path
        if method == "GET" and (found := self._discovery(path)) is not None:
            return 200, found
        if path.startswith(_CRDS):
            return self._crd_request(method, path)
        if path == _SSAR:
            if method != "POST":
                raise _method_not_allowed()
            return 201, self._access_review(record.body)
        match = _CORE.match(path) or _GROUPED.match(path)
        if match is None:
            raise _no_such_path()
        parts = match.groupdict()
        res = RESOURCES.get((parts.get("group") or "", parts["version"], parts["plural"]))
        if res is None or (res.group == "ray.io" and self.no_crd):
            raise _no_such_path()
        return self._resource_request(h, record, res, parts["ns"], parts["name"], parts["sub"])

    # -- discovery, CRDs, access reviews ---------------------------------------------------------

    def _discovery(self, path: str) -> dict[str, Any] | None:
        groups = {r.group for r in RESOURCES.values() if r.group} | set(_GROUPS)
        if self.no_crd:
            groups.discard("ray.io")
        if path == "/version":
            return KUBE_VERSION
        if path == "/api":
            address = self.url.removeprefix("http://")
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": address}
                ],
            }
        if path == "/api/v1":
            return _resource_list("v1", "")
        if path == "/apis":
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_group(g) for g in sorted(groups)],
            }
        parts = path.split("/")
        if len(parts) in (3, 4) and parts[1] == "apis" and parts[2] in groups:
            if len(parts) == 3:
                return {"kind": "APIGroup", "apiVersion": "v1", **_group(parts[2])}
            if parts[3] == "v1":
                return _resource_list(f"{parts[2]}/v1", parts[2])
        return None

    def _crd(self, res: Resource) -> dict[str, Any]:
        schema_file = SHARED / f"{res.singular}-v1.schema.json"
        names = {
            "kind": res.kind,
            "listKind": f"{res.kind}List",
            "plural": res.plural,
            "singular": res.singular,
            "categories": ["all"],
        }
        now = timestamp()
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "name": res.qualified,
                "uid": str(uuid.uuid4()),
                "resourceVersion": "1",
                "generation": 1,
                "creationTimestamp": now,
                "annotations": {"controller-gen.kubebuilder.io/version": "v0.17.3"},
            },
            "spec": {
                "group": res.group,
                "names": names,
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": json.loads(schema_file.read_text())},
                        "subresources": {"status": {}},
                    }
                ],
            },
            "status": {
                "acceptedNames": names,
                "storedVersions": ["v1"],
                "conditions": [
                    {
                        "type": "NamesAccepted",
                        "status": "True",
                        "reason": "NoConflicts",
                        "message": "no conflicts found",
                        "lastTransitionTime": now,
                    },
                    {
                        "type": "Established",
                        "status": "True",
                        "reason": "InitialNamesAccepted",
                        "message": "the initial names have been accepted",
                        "lastTransitionTime": now,
                    },
                ],
            },
        }

    def _crd_request(self, method: str, path: str) -> tuple[int, Any]:
        if method != "GET":
            raise _method_not_allowed()
        crds = {} if self.no_crd else self._crds
        name = path.removeprefix(_CRDS).strip("/")
        if not name:
            items = list(crds.values())
            return 200, {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinitionList",
                "metadata": {"resourceVersion": "1"},
                "items": items,
            }
        if name not in crds:
            raise ApiError(
                404,
                "NotFound",
                f'customresourcedefinitions.apiextensions.k8s.io "{name}" not found',
                details={
                    "name": name,
                    "group": "apiextensions.k8s.io",
                    "kind": "customresourcedefinitions",
                },
            )
        return 200, crds[name]

    def _access_review(self, body: Any) -> dict[str, Any]:
        spec = (body or {}).get("spec") or {}
        attrs = spec.get("resourceAttributes")
        allowed, reason = True, "FakeKube allows everything not in forbid"
        if attrs:
            resource = attrs.get("resource", "")
            if attrs.get("subresource"):
                resource += "/" + attrs["subresource"]
            if (attrs.get("verb", ""), resource) in self.forbid:
                allowed, reason = False, "FakeKube: forbidden by the forbid fault"
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {"allowed": allowed, "reason": reason},
        }

    # -- resources -------------------------------------------------------------------------------

    def _resource_request(
        self,
        h: _Handler,
        record: RequestRecord,
        res: Resource,
        namespace: str | None,
        name: str | None,
        sub: str | None,
    ) -> tuple[int, Any] | None:
        method, query, body = record.method, record.query, record.body
        if (namespace is not None and not res.namespaced) or (sub and sub not in res.subresources):
            raise _no_such_path()
        if res.namespaced and name is not None and namespace is None:
            raise _no_such_path()
        watch = query.get("watch", "").lower() in ("1", "true")
        self._authorize(_verb(method, name, watch), res, sub, namespace, name)
        if method == "GET" and name is None:
            if watch:
                self._watch(h, record, res, namespace, query)
                return None
            items, rv = self.store.list(res, namespace, match=_selector(query))
            return 200, {
                "apiVersion": res.api_version,
                "kind": f"{res.kind}List",
                "metadata": {"resourceVersion": str(rv)},
                "items": items,
            }
        if method == "GET" and sub == "log":
            self._pod_log(h, record, namespace or "", name or "", query)
            return None
        if method == "GET":
            return 200, self._existing(res, namespace, name or "")
        if not res.writable:
            raise _method_not_allowed()
        if method == "POST" and name is None:
            return 201, self._create(res, namespace, body, query)
        if name is None:
            raise _method_not_allowed()
        if method == "PATCH":
            ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip()
            return 200, self._patch(res, namespace, name, sub, body, ctype, query)
        if method == "PUT":
            return 200, self._replace(res, namespace, name, sub, body, query)
        if method == "DELETE" and sub is None:
            return 200, self._delete(res, namespace, name, body, query)
        raise _method_not_allowed()

    def _authorize(
        self, verb: str, res: Resource, sub: str | None, namespace: str | None, name: str | None
    ) -> None:
        resource = f"{res.plural}/{sub}" if sub else res.plural
        if (verb, resource) not in self.forbid:
            return
        what = f'{res.qualified} "{name}"' if name else res.qualified
        scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        message = (
            f'{what} is forbidden: User "{USER}" cannot {verb} resource "{resource}" '
            f'in API group "{res.group}"{scope}'
        )
        raise ApiError(403, "Forbidden", message, details=_details(res, name))

    def _existing(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(res, namespace, name)
        if obj is None:
            raise ApiError.not_found(res, name)
        return obj

    def _create(
        self, res: Resource, namespace: str | None, body: Any, query: dict[str, str]
    ) -> dict[str, Any]:
        dry_run = _dry_run(query)
        obj = _object_body(res, body)
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace") not in (None, "", namespace):
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        for key in _SERVER_SET:
            meta.pop(key, None)
        obj.pop("status", None)
        if self.store.get(NAMESPACES, None, namespace or "") is None:
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                details={"name": namespace, "kind": "namespaces"},
            )
        self._admit(res, obj)
        if dry_run:
            fill_metadata(res, namespace, obj)
            return obj
        stored = self.store.create(res, namespace, obj)
        if res is RAYJOBS:
            self.operator.rayjob_created(stored)
        elif res is RAYCLUSTERS:
            self.operator.raycluster_created(stored)
        elif res is JOBS:
            self.jobs.job_created(stored)
        return stored

    def _admit(self, res: Resource, obj: dict[str, Any]) -> None:
        """Defaults, then the strict schema and the metadata rules: 422 Invalid on any error."""
        schema = _schema(res)
        _apply_defaults(schema, obj)
        causes = _schema_causes(res, obj) + _metadata_causes(obj.get("metadata") or {})
        if res is RAYJOBS and not causes:
            causes = [_cause("FieldValueInvalid", p, "") for p in split_violations(obj)[0]]
        if res is JOBS and not causes:
            policy = obj["spec"]["template"].get("spec", {}).get("restartPolicy")
            if policy not in ("Never", "OnFailure"):
                path = "spec.template.spec.restartPolicy"
                causes = [_cause("FieldValueNotSupported", path, 'supported: "Never", "OnFailure"')]
        if causes:
            raise _invalid(res, (obj.get("metadata") or {}).get("name", ""), causes)

    def _patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        sub: str | None,
        body: Any,
        content_type: str,
        query: dict[str, str],
    ) -> dict[str, Any]:
        old = self._existing(res, namespace, name)
        if content_type == "application/merge-patch+json":
            if not isinstance(body, dict):
                raise ApiError.bad_request("a merge patch must be a JSON object")
            new = _merge_patch(copy.deepcopy(old), body)
        elif content_type == "application/json-patch+json":
            new = _json_patch(copy.deepcopy(old), body)
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: application/json-patch+json, application/merge-patch+json "
                f"(FakeKube got {content_type!r})",
            )
        return self._write(res, namespace, name, sub, old, new, query)

    def _replace(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        sub: str | None,
        body: Any,
        query: dict[str, str],
    ) -> dict[str, Any]:
        old = self._existing(res, namespace, name)
        new = _object_body(res, body)
        given = (new.get("metadata") or {}).get("name")
        if given != name:
            raise ApiError.bad_request(
                f"the name of the object ({given}) does not match the name on the URL ({name})"
            )
        return self._write(res, namespace, name, sub, old, new, query)

    def _write(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        sub: str | None,
        old: dict[str, Any],
        new: dict[str, Any],
        query: dict[str, str],
    ) -> dict[str, Any]:
        """Store an update: only status through ``/status``, never status otherwise."""
        dry_run = _dry_run(query)
        wanted_rv = (new.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise ApiError.conflict(res, name)
        result = copy.deepcopy(old)
        if sub == "status":
            result.pop("status", None)
            if new.get("status") is not None:
                result["status"] = new["status"]
        else:
            meta = new.get("metadata") or {}
            for key in ("labels", "annotations", "finalizers", "ownerReferences"):
                if meta.get(key) is not None:
                    result["metadata"][key] = meta[key]
                else:
                    result["metadata"].pop(key, None)
            if new.get("spec") != old.get("spec"):
                result["spec"] = new.get("spec")
                result["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        result = _prune_nulls(result)
        self._admit(res, result)
        if dry_run:
            return result

        def change(obj: dict[str, Any]) -> None:
            obj.clear()
            obj.update(copy.deepcopy(result))

        stored = self.store.mutate(res, namespace, name, change, uid=old["metadata"]["uid"])
        if stored is None:
            raise ApiError.conflict(res, name)
        if res is RAYJOBS:
            self.operator.rayjob_changed(namespace or "", name)
        return stored

    def _delete(
        self, res: Resource, namespace: str | None, name: str, body: Any, query: dict[str, str]
    ) -> dict[str, Any]:
        options = body if isinstance(body, dict) else {}
        obj = self._existing(res, namespace, name)
        preconditions = options.get("preconditions") or {}
        for key in ("uid", "resourceVersion"):
            if preconditions.get(key) and preconditions[key] != obj["metadata"].get(key):
                raise ApiError.conflict(res, name)
        if _dry_run(query) or options.get("dryRun") == ["All"]:
            return obj
        result, _ = self.store.delete(res, namespace, name)
        if res is RAYJOBS:
            self.operator.rayjob_changed(namespace or "", name)
        elif res is RAYCLUSTERS:
            self.operator.raycluster_deleted(namespace or "", name)
        return result

    # -- streams ---------------------------------------------------------------------------------

    def _watch(
        self,
        h: _Handler,
        record: RequestRecord,
        res: Resource,
        namespace: str | None,
        query: dict[str, str],
    ) -> None:
        match = _selector(query)
        since = query.get("resourceVersion", "")
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        deadline = time.monotonic() + timeout if timeout else None
        store = self.store
        with store.lock:
            drops = self._watch_drops
            if since in ("", "0"):
                items, last = store.list(res, namespace, match=match)
                initial = [{"type": "ADDED", "object": obj} for obj in items]
            else:
                try:
                    last = int(since)
                except ValueError:
                    raise ApiError.bad_request(f"invalid resource version: {since!r}") from None
                initial = []
                if (gone := self._too_old(last)) is not None:
                    if self._gone_http:
                        raise ApiError(410, "Expired", gone)
                    record.status = 200
                    h.start_stream()
                    h.send_line(_error_event(gone))
                    h.end_stream()
                    return
        record.status = 200
        h.start_stream()
        for event in initial:
            h.send_line(event)
        while True:
            with store.changed:
                store.changed.wait_for(
                    lambda last=last: (
                        store.rv > last or self._watch_drops != drops or self.stopping
                    ),
                    timeout=_WAKE_S,
                )
                events = store.events_after(last)
                lost = store.compacted > last
                dropped, abrupt = self._watch_drops != drops, self._abrupt_drops
                if dropped:
                    events = [event for event in events if event.rv <= self._watch_drop_rv]
            if lost:  # this watch fell behind the history: the client must list again
                h.send_line(_error_event(f"too old resource version: {last} ({store.compacted})"))
                h.end_stream()
                return
            for event in events:
                if _event_matches(event, res, namespace, match):
                    h.send_line({"type": event.type, "object": event.object})
                last = event.rv
            if dropped and abrupt:
                h.reset()
                return
            elif not (dropped or self.stopping or _past(deadline)):
                if not events and h.client_gone():
                    h.close_connection = True
                    return
                continue
            h.end_stream()
            return

    def _too_old(self, rv: int) -> str | None:
        oldest = max(self._gone_below, self.store.compacted)
        if rv < oldest:
            return f"too old resource version: {rv} ({oldest})"
        return None

    def _pod_log(
        self, h: _Handler, record: RequestRecord, namespace: str, name: str, query: dict[str, str]
    ) -> None:
        pod = self._existing(PODS, namespace, name)
        containers = [c.get("name") for c in pod["spec"].get("containers") or []]
        container = query.get("container")
        if container is None and len(containers) > 1:
            raise ApiError.bad_request(
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(containers)}]"
            )
        container = container or (containers[0] if containers else "")
        if container not in containers:
            raise ApiError.bad_request(f"container {container} is not valid for pod {name}")
        if query.get("previous", "").lower() == "true":
            raise ApiError.bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        if pod.get("status", {}).get("phase") == "Pending":
            raise ApiError.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            )
        text, done = self.store.read_log(namespace, name)
        if query.get("tailLines"):
            lines = text.splitlines(keepends=True)
            first = text[: len(text) - len("".join(lines[-int(query["tailLines"]) :]))]
        else:
            first = ""
        limit = int(query["limitBytes"]) if query.get("limitBytes") else None
        sender = _LimitedSender(h, limit)
        record.status = 200
        if query.get("follow", "").lower() != "true":
            h.send_text(200, sender.cut(text[len(first) :]))
            return
        drops = self._log_drops
        h.start_stream("text/plain")
        sent = len(first)
        while True:
            if len(text) > sent:
                sender.send(text[sent:])
                sent = len(text)
            if done or sender.full or self.stopping or self._log_drops != drops:
                break
            with self.store.changed:
                self.store.changed.wait(0.5)  # logs read from a file change unannounced
            if h.client_gone():
                h.close_connection = True
                return
            text, done = self.store.read_log(namespace, name)
        h.end_stream()


class _LimitedSender:
    """Sends log text in chunks, at most ``limit`` bytes in all (``limitBytes``)."""

    def __init__(self, h: _Handler, limit: int | None) -> None:
        self.h, self.left = h, limit

    @property
    def full(self) -> bool:
        return self.left is not None and self.left <= 0

    def cut(self, text: str) -> bytes:
        data = text.encode()
        if self.left is not None:
            data = data[: max(self.left, 0)]
            self.left -= len(data)
        return data

    def send(self, text: str) -> None:
        data = self.cut(text)
        if data:
            self.h.send_chunk(data)


# -- HTTP --------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    kube: FakeKube

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """Unblock every handler thread still waiting on a kept-alive connection."""
        with self.connections_lock:
            connections = list(self.connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked streams for watch and follow
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self.server.kube.handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("FakeKube: " + format, *args)

    def send_json(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json", headers or {})

    def send_error_status(self, error: ApiError) -> None:
        """Answer with an error's Status, unless the client is gone already."""
        try:
            self.send_json(error.code, error.status(), error.headers)
        except OSError:
            self.close_connection = True

    def send_text(self, code: int, data: bytes) -> None:
        self._send(code, data, "text/plain", {})

    def _send(self, code: int, data: bytes, ctype: str, headers: dict[str, str]) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, ctype: str = "application/json") -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_line(self, obj: Any) -> None:
        self.send_chunk(json.dumps(obj).encode() + b"\n")

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def reset(self) -> None:
        """Cut the connection mid-stream, as a network failure would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def client_gone(self) -> bool:
        """True if the client closed its end (checked while a stream is idle)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


def _read_body(h: _Handler) -> Any:
    length = int(h.headers.get("Content-Length") or 0)
    raw = h.rfile.read(length) if length else b""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError.bad_request(f"the body of the request is not JSON: {exc}") from None


# -- helpers -----------------------------------------------------------------------------------


def _resource(kind: str) -> Resource:
    for res in RESOURCES.values():
        if res.matches(kind):
            return res
    raise KeyError(f"FakeKube serves no resource {kind!r}")


def _namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _group(name: str) -> dict[str, Any]:
    version = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [version], "preferredVersion": version}


def _resource_list(group_version: str, group: str) -> dict[str, Any]:
    resources = []
    for res in RESOURCES.values():
        if res.group != group:
            continue
        verbs = ["get", "list", "watch"]
        if res.writable:
            verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        entry = {
            "name": res.plural,
            "singularName": res.singular,
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": verbs,
        }
        if res.group == "ray.io":
            entry["categories"] = ["all"]
        resources.append(entry)
        for sub in res.subresources:
            sub_verbs = ["get", "patch", "update"] if res.writable else ["get"]
            resources.append(
                {
                    "name": f"{res.plural}/{sub}",
                    "singularName": "",
                    "namespaced": res.namespaced,
                    "kind": res.kind,
                    "verbs": sub_verbs,
                }
            )
    for name, kind, namespaced, verbs in _GROUPS.get(group, []):
        resources.append(
            {
                "name": name,
                "singularName": name.rstrip("s"),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": verbs,
            }
        )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _verb(method: str, name: str | None, watch: bool) -> str:
    if method == "GET":
        return "get" if name else ("watch" if watch else "list")
    if method == "DELETE" and name is None:
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "")


def _details(res: Resource, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"group": res.group, "kind": res.plural}
    if name:
        details["name"] = name
    return details


def _no_such_path() -> ApiError:
    return ApiError(
        404,
        "NotFound",
        "the server could not find the requested resource",
        details={
            "causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]
        },
    )


def _method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def _selector(query: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    labels = parse_label_selector(query.get("labelSelector", ""))
    fields = parse_field_selector(query.get("fieldSelector", ""))
    return lambda obj: labels(obj) and fields(obj)


def _event_matches(
    event: WatchEvent, res: Resource, namespace: str | None, match: Callable[[Any], bool]
) -> bool:
    return event.resource is res and namespace in (None, event.namespace) and match(event.object)


def _error_event(message: str) -> dict[str, Any]:
    return {"type": "ERROR", "object": ApiError(410, "Expired", message).status()}


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


def _dry_run(query: dict[str, str]) -> bool:
    value = query.get("dryRun")
    if value is None:
        return False
    if value != "All":
        raise ApiError.bad_request(f"Invalid dryRun value {value!r}: only 'All' is supported")
    return True


def _object_body(res: Resource, body: Any) -> dict[str, Any]:
    """The request body as an object of ``res``, nulls pruned; 400 when it is not one."""
    if not isinstance(body, dict):
        raise ApiError.bad_request("the body of the request was in an unknown format")
    if body.get("apiVersion") != res.api_version:
        raise ApiError.bad_request(
            f"the API version in the data ({body.get('apiVersion')}) does not match the "
            f"expected API version ({res.api_version})"
        )
    if body.get("kind") != res.kind:
        raise ApiError.bad_request(
            f"the kind in the data ({body.get('kind')}) does not match the expected kind "
            f"({res.kind})"
        )
    return _prune_nulls(copy.deepcopy(body))


def _prune_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value if v is not None]
    return value


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


def _json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, test."""
    if not isinstance(ops, list):
        raise ApiError.bad_request("a JSON patch must be a list of operations")
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = target
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        key: Any = parts[-1]
        if isinstance(parent, list):
            key = len(parent) if key == "-" else int(key)
        kind = op["op"]
        if kind == "test":
            if parent[key] != op["value"]:
                raise ApiError(422, "Invalid", f"the test of {op['path']} failed")
        elif kind == "remove":
            del parent[key]
        elif kind == "add" and isinstance(parent, list):
            parent.insert(key, op["value"])
        elif kind in ("add", "replace"):
            parent[key] = op["value"]
        else:
            raise ApiError.bad_request(f"JSON patch operation {kind!r} is not supported")
    return target


@functools.cache
def _schema(res: Resource) -> dict[str, Any]:
    """The strict schema of a RayJob, or of a RayCluster (the RayJob's rayClusterSpec)."""
    rayjob = strict_schema()
    if res is RAYJOBS:
        return rayjob
    props = rayjob["properties"]
    if res is JOBS:  # the fields flyray writes; the pod template as KubeRay's CRD has it
        integer = {"type": "integer"}
        spec = {
            "type": "object",
            "additionalProperties": False,
            "required": ["template"],
            "properties": {
                "activeDeadlineSeconds": integer,
                "backoffLimit": integer,
                "template": props["spec"]["properties"]["submitterPodTemplate"],
                "ttlSecondsAfterFinished": integer,
            },
        }
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["spec"],
            "properties": {
                "apiVersion": props["apiVersion"],
                "kind": props["kind"],
                "metadata": props["metadata"],
                "spec": spec,
                "status": {"type": "object"},
            },
        }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["spec"],
        "properties": {
            "apiVersion": props["apiVersion"],
            "kind": props["kind"],
            "metadata": props["metadata"],
            "spec": props["spec"]["properties"]["rayClusterSpec"],
            "status": props["status"]["properties"]["rayClusterStatus"],
        },
    }


@functools.cache
def _validator(res: Resource) -> Any:
    import jsonschema

    return jsonschema.Draft7Validator(_schema(res))


def _apply_defaults(schema: Any, value: Any) -> None:
    """Fill schema defaults where a value is absent, as the API server does before validating."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and isinstance(sub, dict) and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _apply_defaults(sub, value[key])
        if isinstance(schema.get("additionalProperties"), dict):
            for item in value.values():
                _apply_defaults(schema["additionalProperties"], item)
    elif isinstance(value, list):
        for item in value:
            _apply_defaults(schema.get("items"), item)


def _schema_causes(res: Resource, obj: dict[str, Any]) -> list[dict[str, str]]:
    """Schema errors as Kubernetes ``StatusCause``s, in field order."""
    causes = []
    errors = sorted(_validator(res).iter_errors(obj), key=lambda e: list(map(str, e.path)))
    for error in errors:
        field = _field(error.absolute_path)
        if error.validator == "additionalProperties":
            known = error.schema.get("properties") or {}
            for key in sorted(k for k in error.instance if k not in known):
                path = f"{field}.{key}" if field else key
                causes.append(_cause("FieldValueInvalid", path, f'unknown field "{path}"'))
        elif error.validator == "required":
            for key in error.validator_value:
                if key not in error.instance:
                    path = f"{field}.{key}" if field else key
                    causes.append(_cause("FieldValueRequired", path, "Required value"))
        elif error.validator == "enum":
            allowed = ", ".join(json.dumps(v) for v in error.validator_value)
            message = f"Unsupported value: {_short(error.instance)}: supported values: {allowed}"
            causes.append(_cause("FieldValueNotSupported", field, message))
        elif error.validator == "type":
            message = (
                f"Invalid value: {_short(error.instance)}: {field} in body must be of type "
                f"{error.validator_value}"
            )
            causes.append(_cause("FieldValueTypeInvalid", field, message))
        else:
            message = f"Invalid value: {_short(error.instance)}: {error.message}"
            causes.append(_cause("FieldValueInvalid", field, message))
    return causes


def _metadata_causes(meta: dict[str, Any]) -> list[dict[str, str]]:
    """What the API server checks in any object's metadata."""
    causes = []
    name = meta.get("name")
    if not name:
        causes.append(
            _cause(
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            )
        )
    elif not isinstance(name, str) or len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        causes.append(
            _cause(
                "FieldValueInvalid",
                "metadata.name",
                f"Invalid value: {_short(name)}: a lowercase RFC 1123 subdomain must "
                "consist of lower case alphanumeric characters, '-' or '.', and must "
                "start and end with an alphanumeric character",
            )
        )
    for key, value in (meta.get("labels") or {}).items():
        prefix, _, label = key.rpartition("/")
        if (
            (prefix and not DNS1123_SUBDOMAIN.match(prefix))
            or len(label) > 63
            or not (_LABEL_NAME.match(label))
        ):
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    "metadata.labels",
                    f"Invalid value: {_short(key)}: not a valid label key",
                )
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    "metadata.labels",
                    f"Invalid value: {_short(value)}: a valid label must be an "
                    "empty string or consist of alphanumeric characters, '-', '_' "
                    "or '.', and must start and end with an alphanumeric "
                    "character",
                )
            )
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    f"metadata.annotations[{key}]",
                    f"Invalid value: {_short(value)}: must be a string",
                )
            )
    return causes


def _cause(reason: str, field: str, message: str) -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


def _invalid(res: Resource, name: str, causes: list[dict[str, str]]) -> ApiError:
    texts = [f"{c['field']}: {c['message']}" if c["field"] else c["message"] for c in causes]
    joined = texts[0] if len(texts) == 1 else f"[{', '.join(texts)}]"
    return ApiError(
        422,
        "Invalid",
        f'{res.kind}.{res.group} "{name}" is invalid: {joined}',
        details={"name": name, "group": res.group, "kind": res.kind, "causes": causes},
    )


def _field(path: Iterator[Any] | Any) -> str:
    """``spec.rayClusterSpec.workerGroupSpecs[0].replicas``, as Kubernetes names fields."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."
