"""TEST CODE: a "status kubelet": the pod lifecycle a kubelet reports, with nothing run.

Level 2 has no scheduler and no kubelet, so pods would stay ``Pending`` and the operator would
wait for its cluster forever. This thread plays both for one namespace, through the real API:
it registers a Node, binds every unscheduled pod to it (the ``pods/binding`` subresource, as
the scheduler does), reports each bound pod ``Running`` and ``Ready`` with pod IP 127.0.0.1
(``pods/status``, as the kubelet does), and finishes the graceful deletion of its pods (a
delete with grace period 0, as the kubelet does once containers stopped). No container runs:
that is level 3. It polls (a list every ``POLL_S``), so it needs no watch to survive.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from flyray.sandbox.pods.kubelet import bind

__all__ = ["NODE", "StatusKubelet"]

NODE = "realkube-node"
POD_IP = "127.0.0.1"
POLL_S = 0.2


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StatusKubelet:
    """Schedules and "runs" every pod of ``namespace``; a context manager that stops it."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.errors: list[str] = []  # failures of the kubelet itself: a test should fail
        self.started: set[str] = set()  # "name/uid" of every pod reported Running
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="status-kubelet", daemon=True)

    def __enter__(self) -> StatusKubelet:
        self._register_node()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _register_node(self) -> None:
        from kubernetes import client

        try:
            self.core.create_node({"metadata": {"name": NODE, "labels": {"realkube": "true"}}})
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    def _loop(self) -> None:
        from kubernetes import client

        while not self._stop.is_set():
            try:
                for pod in self.core.list_namespaced_pod(self.namespace).items:
                    self._tend(pod)
            except client.ApiException as exc:
                if exc.status not in (404, 409):  # a pod gone or changed meanwhile: next round
                    self.errors.append(f"{exc.status} {exc.reason}: {exc.body}")
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(POLL_S)

    def _tend(self, pod: Any) -> None:
        """One step of this pod's life: bind it, report it running, or finish its deletion."""
        name, node = pod.metadata.name, pod.spec.node_name
        if node is None:
            if pod.metadata.deletion_timestamp is None:
                self._bind(name)
        elif node != NODE:
            return
        elif pod.metadata.deletion_timestamp is not None:
            self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        elif pod.status.phase == "Pending":
            self.core.patch_namespaced_pod_status(name, self.namespace, running_status(pod))
            self.started.add(f"{name}/{pod.metadata.uid}")

    def _bind(self, name: str) -> None:
        bind(self.core, self.namespace, name, NODE)


def running_status(pod: Any) -> dict[str, Any]:
    """The ``status`` a kubelet reports for ``pod`` once every container started and is ready.

    Init containers (the operator's wait for the GCS) have completed.
    """
    now = _now()
    conditions = [
        {"type": kind, "status": "True", "lastTransitionTime": now}
        for kind in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
    ]
    running = [
        {
            "name": container.name,
            "image": container.image,
            "imageID": "",
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": now}},
        }
        for container in pod.spec.containers
    ]
    completed = [
        {
            "name": container.name,
            "image": container.image,
            "imageID": "",
            "ready": True,
            "restartCount": 0,
            "state": {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": now,
                    "finishedAt": now,
                }
            },
        }
        for container in pod.spec.init_containers or []
    ]
    return {
        "status": {
            "phase": "Running",
            "conditions": conditions,
            "hostIP": POD_IP,
            "hostIPs": [{"ip": POD_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": now,
            "containerStatuses": running,
            "initContainerStatuses": completed,
        }
    }
