"""KubeRay's CRDs (ray.io/v1 RayJob, RayCluster, RayService): from a folder of schemas
(``../shared/kuberay``, what the tests pin) or of KubeRay's own CRD files (the sandbox's).

A folder holding ``ray.io_rayjobs.yaml`` is KubeRay's ``config/crd/bases``, installed as it is
(``kuberay_crd_dir`` finds it in the Go module cache, where building the operator put it).

Names, scope and subresources as KubeRay v1.7.0's ``ray-operator/config/crd/bases`` declare
them (no short names there; category ``all``); the ``openAPIV3Schema`` is the shared file as is.
RayService has no shared schema: flyray makes none, but the real operator watches them and does
not start without the CRD, so it gets a schema that keeps any field.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["KUBERAY_CRDS", "crd_manifest", "install_crds", "kuberay_crd_dir"]

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


def kuberay_crd_dir(version: str) -> Path:
    """``config/crd/bases`` of KubeRay's operator module at ``version`` in Go's module cache."""
    from flyray.sandbox.build import KubeBuildError, go_command

    done = subprocess.run(
        [go_command(), "env", "GOMODCACHE"], capture_output=True, text=True, check=False
    )
    folder = (
        Path(done.stdout.strip())
        / f"github.com/ray-project/kuberay/ray-operator@{version}/config/crd/bases"
    )
    if done.returncode != 0 or not (folder / "ray.io_rayjobs.yaml").is_file():
        raise KubeBuildError(
            f"KubeRay {version}'s CRDs are not at {folder}: building kuberay-operator puts "
            f"them there (go env GOMODCACHE said: {done.stdout.strip() or done.stderr.strip()})"
        )
    return folder


def _manifests(schemas: Path) -> list[dict[str, Any]]:
    """The CRDs to create from ``schemas`` (see the module's docstring)."""
    import yaml

    if (schemas / "ray.io_rayjobs.yaml").is_file():
        return [
            yaml.safe_load((schemas / f"ray.io_{plural}.yaml").read_text())
            for _, plural, _ in KUBERAY_CRDS
        ]
    return [
        crd_manifest(kind, plural, json.loads((schemas / file).read_text()) if file else ANY_OBJECT)
        for kind, plural, file in KUBERAY_CRDS
    ]


def install_crds(api_client: Any, schemas: Path, *, timeout: float = 60.0) -> None:
    """Create the CRDs and wait until they are Established and served in discovery."""
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(api_client)
    for manifest in _manifests(schemas):
        answer = extensions.create_custom_resource_definition(manifest, _preload_content=False)
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
