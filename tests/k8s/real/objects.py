"""What the real API server holds in one namespace, read as plain dicts (as ``kubectl -o json``).

The level-2 tests assert on the objects the real KubeRay operator and the real Job controller
make; dicts in the API's own field names keep those assertions as the docs spell them.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Namespace", "ray_start_flags", "wait_until"]

GROUP, VERSION = "ray.io", "v1"


def _json(answer: Any) -> Any:
    """The body of a response read with ``_preload_content=False``, parsed."""
    return json.loads(answer.data)


class Namespace:
    """Reads one namespace through ``api_client`` (an admin ``kubernetes.client.ApiClient``)."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self.name = namespace
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def ray(self, plural: str, selector: str = "") -> list[dict[str, Any]]:
        """``ray.io/v1`` objects (``rayjobs``, ``rayclusters``) matching a label selector."""
        return _json(
            self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.name, plural, label_selector=selector, _preload_content=False
            )
        )["items"]

    def pods(self, selector: str = "") -> list[dict[str, Any]]:
        return self._items(self.core.list_namespaced_pod, selector)

    def services(self, selector: str = "") -> list[dict[str, Any]]:
        return self._items(self.core.list_namespaced_service, selector)

    def jobs(self, selector: str = "") -> list[dict[str, Any]]:
        return self._items(self.batch.list_namespaced_job, selector)

    def secrets(self, selector: str = "") -> list[dict[str, Any]]:
        return self._items(self.core.list_namespaced_secret, selector)

    def _items(self, list_fn: Callable[..., Any], selector: str) -> list[dict[str, Any]]:
        return _json(list_fn(self.name, label_selector=selector, _preload_content=False))["items"]

    def everything(self) -> dict[str, list[str]]:
        """Names of every RayJob, RayCluster, pod, Service and batch Job here, and of the
        Secrets KubeRay made for a cluster (none: {})."""
        found = {
            "rayjobs": self.ray("rayjobs"),
            "rayclusters": self.ray("rayclusters"),
            "pods": self.pods(),
            "services": self.services(),
            "jobs": self.jobs(),
            "secrets": self.secrets("ray.io/cluster"),
        }
        return {
            kind: [item["metadata"]["name"] for item in items]
            for kind, items in found.items()
            if items
        }


def ray_start_flags(container: dict[str, Any]) -> set[str]:
    """The flags of the ``ray start`` the operator wrote into a Ray container's args.

    The operator makes the container run ``/bin/bash -c -- "ulimit -n 65536; ray start ..."``.
    """
    (line,) = container["args"]
    _, start = line.split("ray start", 1)
    return set(shlex.split(start))


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition()`` every 0.1 s until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.1)
    return found
