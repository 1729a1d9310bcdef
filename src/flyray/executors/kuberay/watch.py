"""Follow one object (a RayJob, a RayCluster) with a Kubernetes watch: no polling.

A watch stream ends now and then (the server's timeout, a dropped connection, a proxy): it is
resumed from the last resourceVersion seen, so no change is missed. When the server no longer
has that version (410 Gone) the object is listed again and the watch starts from the list.
Transient errors are retried with backoff, a bounded number of times in a row.

KubeRay writes a RayJob's status only when its deployment or job status changes, so the
cluster's progress while it starts is read from the RayCluster itself (``ClusterReadiness``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flyray.errors import FlyrayError
from flyray.executors.kuberay.errors import is_transient, retry_delay, translate
from flyray.executors.kuberay.session import (
    RAYCLUSTERS,
    RAYJOBS,
    KubeSession,
    ObjectKind,
)
from flyray.executors.kuberay.status import readiness, readiness_line

__all__ = ["OUTAGE_S", "WATCH_TIMEOUT_S", "ClusterReadiness", "ObjectWatch", "wait_deleted"]

WATCH_TIMEOUT_S = 60  # the server ends each watch request after this; it is then resumed
_READ_SLACK_S = 15.0  # how much longer than that a silent connection may stay open
OUTAGE_S = 120.0  # how long a watch keeps trying through transient errors in a row


class ObjectWatch:
    """Iterate ``(event type, object)`` of one object: its current state, then every change.

    The first item is ``("SYNC", object)``, as are those after a re-list. Iteration ends after
    ``("DELETED", object)`` (``{}`` when a re-list finds it gone), after ``timeout`` seconds,
    or once ``stop()`` is called (from any thread).
    """

    def __init__(
        self,
        session: KubeSession,
        name: str,
        *,
        kind: ObjectKind = RAYJOBS,
        timeout: float | None = None,
    ) -> None:
        self.session, self.name, self.kind = session, name, kind
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.stopped = False
        self._watch: Any = None
        self._outage_since = 0.0

    def stop(self) -> None:
        """End the iteration; a blocked read is cut off."""
        self.stopped = True
        if self._watch is not None:
            self._watch.stop()

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        import urllib3
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        version: str | None = None
        failures = 0
        selector = f"metadata.name={self.name}"
        while not self.stopped and self._time_left():
            if version is None:
                listed = self.session.list_objects(self.kind, field_selector=selector)
                version = listed["metadata"]["resourceVersion"]
                items = listed.get("items") or []
                yield ("SYNC", items[0]) if items else ("DELETED", {})
                if not items:
                    return
            seconds = self._time_left()
            self._watch = watch.Watch()
            stream = self._watch.stream(
                self.session.custom.list_namespaced_custom_object,
                *self.kind.path(self.session.namespace),
                field_selector=selector,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=seconds,
                _request_timeout=(10.0, seconds + _READ_SLACK_S),
            )
            try:
                for event in stream:
                    failures = 0
                    kind, obj = event["type"], event["raw_object"]
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if kind == "BOOKMARK":
                        continue
                    yield kind, obj
                    if kind == "DELETED":
                        return
            except ApiException as exc:
                if exc.status == 410:
                    version = None  # too old for the server: list again
                    continue
                failures = self._failed(exc, failures)
            except urllib3.exceptions.ReadTimeoutError:
                continue  # a silent stream: resume it
            except Exception as exc:
                if self.stopped:
                    return
                failures = self._failed(exc, failures)
            finally:
                stream.close()

    def _time_left(self) -> int:
        """Seconds for the next watch request (at least 1); 0 once past the deadline."""
        if self.deadline is None:
            return WATCH_TIMEOUT_S
        left = self.deadline - time.monotonic()
        return 0 if left <= 0 else max(1, min(WATCH_TIMEOUT_S, round(left)))

    def _failed(self, exc: Exception, failures: int) -> int:
        """One more failure in a row: wait before the next try, or raise when it is over.

        A watch outlives an API server outage of up to ``OUTAGE_S`` (a restart, a failover):
        giving up would end a healthy run, and its clean-up would delete the RayJob.
        """
        failures += 1
        if failures == 1:
            self._outage_since = time.monotonic()
        over = time.monotonic() - self._outage_since >= OUTAGE_S
        if not is_transient(exc) or over:
            what = f"watch {self.session.ref(self.kind, self.name)}"
            error = translate(exc, what=what, server=self.session.server, attempts=failures)
            if error is None:
                raise exc
            raise error from exc
        time.sleep(retry_delay(failures, exc))
        return failures


def wait_deleted(
    session: KubeSession, name: str, *, kind: ObjectKind = RAYJOBS, timeout: float
) -> bool:
    """Wait until the object is gone (after a foreground delete); False after ``timeout``."""
    events = iter(ObjectWatch(session, name, kind=kind, timeout=timeout))
    try:
        return any(kind == "DELETED" for kind, _ in events)
    finally:
        events.close()  # type: ignore[attr-defined]


class ClusterReadiness:
    """Reports a starting RayCluster's ready and desired workers, from a background watch.

    ``report`` is called from that thread. Watching RayClusters is optional: without the
    permission (or on any error) nothing is reported.
    """

    def __init__(self, session: KubeSession, report: Callable[[str], None]) -> None:
        self.session, self.report = session, report
        self.cluster: str | None = None
        self._watch: ObjectWatch | None = None

    def follow(self, cluster: str) -> None:
        """Watch ``cluster`` (a no-op if it is the one watched already)."""
        if cluster == self.cluster:
            return
        self.stop()
        self.cluster = cluster
        self._watch = ObjectWatch(self.session, cluster, kind=RAYCLUSTERS)
        threading.Thread(
            target=self._run, args=(self._watch,), name=f"flyray-raycluster-{cluster}", daemon=True
        ).start()

    def stop(self) -> None:
        """Stop watching (the thread ends at once)."""
        if self._watch is not None:
            self._watch.stop()
        self._watch = None

    def _run(self, watch: ObjectWatch) -> None:
        shown = None
        try:
            for kind, obj in watch:
                state = readiness(obj.get("status"))
                if watch.stopped or kind == "DELETED":
                    return
                if state != shown:
                    shown = state
                    self.report(readiness_line(watch.name, state))
                if (obj.get("status") or {}).get("state") == "ready":
                    return
        except FlyrayError:
            return
        finally:
            watch.stop()
