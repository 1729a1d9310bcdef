"""TEST CODE: the object store behind FakeKube, a stand-in for etcd plus the API machinery.

Objects live in memory as plain dicts, keyed by (resource, namespace, name). Every write takes
the next value of ONE global resourceVersion counter (as etcd's revision) and appends a watch
event to a bounded history; a watch from a resourceVersion older than that history gets
410 Gone. Objects with finalizers are only marked (``deletionTimestamp``) by a delete and
disappear when their last finalizer is removed; removing an object removes every object that
names it in ``ownerReferences`` (the garbage collector, done at once instead of in background).
Pod logs are kept here too, as text that grows, or as a callable read on demand.
"""

from __future__ import annotations

import contextlib
import copy
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "DNS1123_SUBDOMAIN",
    "JOBS",
    "NAMESPACES",
    "PODS",
    "RAYCLUSTERS",
    "RAYJOBS",
    "RESOURCES",
    "ApiError",
    "Resource",
    "Store",
    "WatchEvent",
    "parse_field_selector",
    "parse_label_selector",
    "random_suffix",
    "timestamp",
]


DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Resource:
    """One REST resource: where it lives in the API and what may be done to it."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool = True
    writable: bool = False  # create / patch / update / delete through the API
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        """``ray.io/v1``, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``rayjobs.ray.io`` (``pods`` for the core group), as error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def matches(self, name: str) -> bool:
        """True if ``name`` is this resource's kind, plural, singular or qualified name."""
        return name.lower() in {self.kind.lower(), self.plural, self.singular, self.qualified}


RAYJOBS = Resource(
    "ray.io", "v1", "rayjobs", "RayJob", "rayjob", writable=True, subresources=("status",)
)
RAYCLUSTERS = Resource(
    "ray.io",
    "v1",
    "rayclusters",
    "RayCluster",
    "raycluster",
    writable=True,
    subresources=("status",),
)
PODS = Resource("", "v1", "pods", "Pod", "pod", subresources=("log", "status"))
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", "namespace", namespaced=False)
JOBS = Resource("batch", "v1", "jobs", "Job", "job", writable=True, subresources=("status",))
RESOURCES = {
    (r.group, r.version, r.plural): r for r in (RAYJOBS, RAYCLUSTERS, PODS, NAMESPACES, JOBS)
}


class ApiError(Exception):
    """An error the API answers with: a Kubernetes ``Status`` object and an HTTP code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = dict(details or {})
        self.headers = dict(headers or {})

    def status(self) -> dict[str, Any]:
        """The ``Status`` object, as the API server writes it."""
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status

    @classmethod
    def not_found(cls, resource: Resource, name: str) -> ApiError:
        return cls(
            404,
            "NotFound",
            f'{resource.qualified} "{name}" not found',
            details=_details(resource, name),
        )

    @classmethod
    def already_exists(cls, resource: Resource, name: str) -> ApiError:
        return cls(
            409,
            "AlreadyExists",
            f'{resource.qualified} "{name}" already exists',
            details=_details(resource, name),
        )

    @classmethod
    def conflict(cls, resource: Resource, name: str) -> ApiError:
        message = (
            f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has '
            "been modified; please apply your changes to the latest version and try again"
        )
        return cls(409, "Conflict", message, details=_details(resource, name))

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)


def _details(resource: Resource, name: str) -> dict[str, str]:
    return {"name": name, "group": resource.group, "kind": resource.plural}


@dataclass(frozen=True)
class WatchEvent:
    """One change, as a watch sends it: ADDED, MODIFIED or DELETED with the object then."""

    rv: int
    type: str
    resource: Resource
    namespace: str | None
    object: dict[str, Any]


@dataclass
class _PodLog:
    text: str = ""
    done: bool = False
    source: Callable[[], str] | None = None  # read on demand (a Ray node's own log file)


@dataclass
class Store:
    """Every object of the fake cluster, the watch history and the pod logs; thread-safe.

    ``changed`` is notified on every write, so that watches, log followers and tests can
    wait for a condition instead of sleeping.
    """

    max_events: int = 1000
    rv: int = 0
    compacted: int = 0  # the newest resourceVersion dropped from the history
    lock: threading.RLock = field(default_factory=threading.RLock)
    objects: dict[tuple[str, str | None, str], dict[str, Any]] = field(default_factory=dict)
    events: deque[WatchEvent] = field(default_factory=deque)
    logs: dict[tuple[str, str], _PodLog] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    # -- reads -------------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A copy of one object, or None."""
        with self.lock:
            obj = self.objects.get((resource.plural, _ns(resource, namespace), name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        match: Callable[[dict[str, Any]], bool] = lambda obj: True,
    ) -> tuple[list[dict[str, Any]], int]:
        """Copies of the matching objects (``namespace`` None: all), oldest first, and the rv."""
        with self.lock:
            found = [
                copy.deepcopy(obj)
                for (plural, ns, _), obj in self.objects.items()
                if plural == resource.plural and namespace in (None, ns) and match(obj)
            ]
            found.sort(key=lambda obj: int(obj["metadata"]["resourceVersion"]))
            return found, self.rv

    def events_after(self, rv: int) -> list[WatchEvent]:
        """The events newer than ``rv``, oldest first (the caller checks ``compacted``)."""
        with self.lock:
            newer = []
            for event in reversed(self.events):
                if event.rv <= rv:
                    break
                newer.append(event)
            return newer[::-1]

    # -- writes ------------------------------------------------------------------------------

    def create(
        self, resource: Resource, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        """Store a new object (metadata filled here); 409 AlreadyExists if the name is taken."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        with self.lock:
            key = (resource.plural, _ns(resource, namespace), meta["name"])
            if key in self.objects:
                raise ApiError.already_exists(resource, meta["name"])
            fill_metadata(resource, namespace, obj)
            meta["resourceVersion"] = str(self._next_rv())
            self.objects[key] = obj
            self._record("ADDED", resource, obj)
            return copy.deepcopy(obj)

    def mutate(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        change: Callable[[dict[str, Any]], None],
        *,
        uid: str | None = None,
    ) -> dict[str, Any] | None:
        """Apply ``change`` to a copy of the object and store it if it differs; None if gone.

        ``uid`` guards against changing a newer object of the same name. An object marked for
        deletion whose last finalizer goes away is removed.
        """
        with self.lock:
            key = (resource.plural, _ns(resource, namespace), name)
            old = self.objects.get(key)
            if old is None or (uid is not None and old["metadata"].get("uid") != uid):
                return None
            new = copy.deepcopy(old)
            change(new)
            meta = new["metadata"]
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                # as the API server: the update that empties the finalizers deletes instead
                self.objects[key] = new
                self.remove(resource, namespace, name)
            elif new != old:
                meta["resourceVersion"] = str(self._next_rv())
                self.objects[key] = new
                self._record("MODIFIED", resource, new, rv=int(meta["resourceVersion"]))
            return copy.deepcopy(new)

    def delete(
        self, resource: Resource, namespace: str | None, name: str
    ) -> tuple[dict[str, Any], bool]:
        """Delete as the API server does: returns (object, removed now?).

        With finalizers the object only gets ``deletionTimestamp`` and stays until they are gone.
        """
        with self.lock:
            obj = self.get(resource, namespace, name)
            if obj is None:
                raise ApiError.not_found(resource, name)
            if not obj["metadata"].get("finalizers"):
                return self.remove(resource, namespace, name) or obj, True

            def mark(new: dict[str, Any]) -> None:
                new["metadata"].setdefault("deletionTimestamp", timestamp())
                new["metadata"].setdefault("deletionGracePeriodSeconds", 0)

            marked = self.mutate(resource, namespace, name, mark)
            return (marked or obj), marked is None

    def remove(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Remove an object now (DELETED event), then every object it owns; None if gone."""
        with self.lock:
            obj = self.objects.pop((resource.plural, _ns(resource, namespace), name), None)
            if obj is None:
                return None
            obj["metadata"]["resourceVersion"] = str(self._next_rv())
            self._record("DELETED", resource, obj, rv=int(obj["metadata"]["resourceVersion"]))
            if resource is PODS:
                self._end_log(namespace or "", name)
            self._collect_garbage(obj["metadata"]["uid"])
            return copy.deepcopy(obj)

    def _collect_garbage(self, owner_uid: str) -> None:
        dependents = [
            (RESOURCE_BY_PLURAL[plural], ns, name)
            for (plural, ns, name), obj in self.objects.items()
            if any(r.get("uid") == owner_uid for r in obj["metadata"].get("ownerReferences", []))
        ]
        for resource, ns, name in dependents:
            self.remove(resource, ns, name)

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _record(
        self, type_: str, resource: Resource, obj: dict[str, Any], *, rv: int | None = None
    ) -> None:
        rv = rv if rv is not None else int(obj["metadata"]["resourceVersion"])
        namespace = obj["metadata"].get("namespace")
        self.events.append(WatchEvent(rv, type_, resource, namespace, copy.deepcopy(obj)))
        self.trim()
        self.changed.notify_all()

    def trim(self) -> None:
        """Drop the oldest events beyond ``max_events`` (a watch from before them gets 410)."""
        with self.lock:
            while len(self.events) > max(self.max_events, 0):
                self.compacted = self.events.popleft().rv

    # -- pod logs ----------------------------------------------------------------------------

    def set_log(
        self,
        namespace: str,
        pod: str,
        text: str | None = None,
        *,
        source: Callable[[], str] | None = None,
        done: bool = False,
    ) -> None:
        """Replace a pod's log text (it only grows), or give it a ``source`` read on demand."""
        with self.lock:
            log = self.logs.setdefault((namespace, pod), _PodLog())
            if text is not None:
                log.text = text
            if source is not None:
                log.source = source
            log.done = log.done or done
            self.changed.notify_all()

    def append_log(self, namespace: str, pod: str, text: str) -> None:
        """Add text to the end of a pod's log."""
        with self.lock:
            log = self.logs.setdefault((namespace, pod), _PodLog())
            log.text += text
            self.changed.notify_all()

    def read_log(self, namespace: str, pod: str) -> tuple[str, bool]:
        """(the log so far, whether it is complete); a pod without a log has an empty one."""
        with self.lock:
            log = self.logs.get((namespace, pod), _PodLog())
            source, text, done = log.source, log.text, log.done
        if source is not None:
            try:
                text = source()
            except OSError:
                text = ""
        return text, done

    def _end_log(self, namespace: str, pod: str) -> None:
        log = self.logs.get((namespace, pod))
        if log is not None:
            if log.source is not None:
                with contextlib.suppress(OSError):
                    log.text = log.source()
                log.source = None
            log.done = True

    # -- waiting -----------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """Block until ``predicate()`` is truthy (re-checked on every write); its last value.

        The predicate runs WITHOUT the store's lock, so it may call the API server itself.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                seen = self.rv
            if value := predicate():
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                return value
            with self.changed:  # until the next write (or a while: some things are read live)
                self.changed.wait_for(lambda seen=seen: self.rv != seen, timeout=min(left, 0.5))


RESOURCE_BY_PLURAL = {r.plural: r for r in RESOURCES.values()}


def fill_metadata(resource: Resource, namespace: str | None, obj: dict[str, Any]) -> None:
    """What the API server sets on create: uid, timestamps, generation, namespace, kind."""
    meta = obj.setdefault("metadata", {})
    obj.setdefault("apiVersion", resource.api_version)
    obj.setdefault("kind", resource.kind)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = timestamp()
    meta["generation"] = 1
    if resource.namespaced:
        meta["namespace"] = namespace
    if namespace is not None and not resource.namespaced:
        meta.pop("namespace", None)


def _ns(resource: Resource, namespace: str | None) -> str | None:
    return namespace if resource.namespaced else None


def timestamp(when: float | None = None) -> str:
    """RFC 3339 in UTC with whole seconds, as Kubernetes writes ``metav1.Time``."""
    moment = datetime.fromtimestamp(time.time() if when is None else when, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length: int = 5) -> str:
    """Five characters as Kubernetes' ``generateName`` and KubeRay's names use them."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' own: no vowels, no 0/1/3
    return "".join(secrets.choice(alphabet) for _ in range(length))


# -- selectors ---------------------------------------------------------------------------------

_TERM = re.compile(
    r"^\s*(?P<key>[^\s!=,()]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[^\s,()]*)|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?"
    r"\s*$"
)
Match = Callable[[Mapping[str, str]], bool]


def parse_label_selector(text: str) -> Callable[[dict[str, Any]], bool]:
    """``k=v,k2!=v2,k3,!k4,k5 in (a,b),k6 notin (c)`` as a predicate on an object's labels."""
    terms = [_label_term(term) for term in _split_terms(text)]
    return lambda obj: all(t(obj.get("metadata", {}).get("labels") or {}) for t in terms)


def _label_term(term: str) -> Match:
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    m = _TERM.match(term)
    if m is None:
        raise ApiError.bad_request(f"unable to parse requirement: {term!r}")
    key = m["key"]
    if m["op"] in ("=", "=="):
        return lambda labels: labels.get(key) == m["value"]
    if m["op"] == "!=":
        return lambda labels: labels.get(key) != m["value"]
    if m["setop"]:
        values = {v.strip() for v in m["values"].split(",")}
        if m["setop"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    return lambda labels: key in labels


def parse_field_selector(text: str) -> Callable[[dict[str, Any]], bool]:
    """``metadata.name=x,status.phase!=Running`` (any dotted path) as a predicate on objects."""
    terms = []
    for term in _split_terms(text):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(\S*)\s*$", term)
        if m is None:
            raise ApiError.bad_request(f"invalid field selector: {term!r}")
        path, op, value = m.groups()
        terms.append((path.split("."), op == "!=", value))

    def match(obj: dict[str, Any]) -> bool:
        return all((str(_dig(obj, path)) == value) != negate for path, negate, value in terms)

    return match


def _dig(obj: Any, path: Iterable[str]) -> Any:
    for part in path:
        obj = obj.get(part, "") if isinstance(obj, dict) else ""
    return obj


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses; empty terms dropped."""
    terms, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t.strip() for t in terms if t.strip()]
