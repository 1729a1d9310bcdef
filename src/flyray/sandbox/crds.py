"""KubeRay's CRDs (ray.io/v1 RayJob, RayCluster, RayService), from the schemas in ../shared/kuberay.

Names, scope and subresources as KubeRay v1.7.0's ``ray-operator/config/crd/bases`` declare
them (no short names there; category ``all``); the ``openAPIV3Schema`` is the shared file as is.
RayService has no shared schema: flyray makes none, but the real operator watches them and does
not start without the CRD, so it gets a schema that keeps any field.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

__all__ = ["KUBERAY_CRDS", "crd_manifest", "install_crds"]

# (kind, plural, schema file; None: any object)
KUBERAY_CRDS: tuple[tuple[str, str, str | None], ...] = (
    ("RayJob", "rayjobs", "rayjob-v1.schema.json"),
    ("RayCluster", "rayclusters", "raycluster-v1.schema.json"),
    ("RayService", "rayservices", None),
)
GROUP = "ray.io"
ANY_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def crd_manifest(kind: str, plural: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The CustomResourceDefinition serving ``schema`` as ``ray.io/v1 kind``, with /status."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "categories": ["all"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


def install_crds(api_client: Any, schemas: Path, *, timeout: float = 60.0) -> None:
    """Create the CRDs and wait until they are Established and served in discovery."""
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(api_client)
    for kind, plural, file in KUBERAY_CRDS:
        schema = json.loads((schemas / file).read_text()) if file else ANY_OBJECT
        answer = extensions.create_custom_resource_definition(
            crd_manifest(kind, plural, schema), _preload_content=False
        )
        answer.data  # noqa: B018  read (not parsed into models): the whole schema again
    deadline = time.monotonic() + timeout
    for _, plural, _ in KUBERAY_CRDS:
        name = f"{plural}.{GROUP}"
        while not _established(extensions, name):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {timeout:.0f} s")
            time.sleep(0.1)
    custom = client.CustomObjectsApi(api_client)
    wanted = {plural for _, plural, _ in KUBERAY_CRDS}
    while not wanted <= _served(custom):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{GROUP}/v1 discovery lacks {wanted - _served(custom)}")
        time.sleep(0.1)


def _established(extensions: Any, name: str) -> bool:
    answer = extensions.read_custom_resource_definition(name, _preload_content=False)
    conditions = (json.loads(answer.data).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def _served(custom: Any) -> set[str]:
    """The resources discovery lists in ray.io/v1 now (none while it is not served yet)."""
    from kubernetes.client.exceptions import ApiException

    try:
        found = custom.get_api_resources(GROUP, "v1")
    except ApiException as exc:
        if exc.status == 404:
            return set()
        raise
    return {resource.name for resource in (found.resources or [])}
