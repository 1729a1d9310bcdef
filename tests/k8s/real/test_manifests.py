"""flyray's RayJobs against a REAL kube-apiserver with KubeRay v1.7.0's CRDs installed.

Every configuration of tests/manifest/cases.py is created with a server-side dry run
and strict field validation; what the server returns must be what flyray sent, plus only the
defaults the CRD schema declares and the metadata the server sets: nothing pruned or changed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.manifest.cases import CASES, rendered
from tests.manifest.kuberay import require_schema

pytestmark = pytest.mark.realkube

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"
SERVER_SET_METADATA = ("uid", "creationTimestamp", "generation", "managedFields", "resourceVersion")
LEGACY_FIELDS = {"spec.runtimeEnv"}  # written for KubeRay < 1.1.0 only; v1.7.0 has no such field


def dry_run_create(api: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    """``POST`` with ``dryRun=All`` and ``fieldValidation=Strict``; the object the server made."""
    from kubernetes import client

    namespace = manifest["metadata"].get("namespace", "default")
    ensure_namespace(api, namespace)
    return client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, manifest, dry_run="All", field_validation="Strict"
    )


def ensure_namespace(api: Any, name: str) -> None:
    """Create namespace ``name`` unless it exists (a dry run needs a real namespace)."""
    from kubernetes import client

    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise


def differences(sent: Any, got: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """How ``got`` differs from ``sent``, except fields the server defaulted per ``schema``."""
    if isinstance(sent, dict) and isinstance(got, dict):
        found = []
        for key in sorted(set(sent) | set(got)):
            where = f"{path}.{key}" if path else key
            child = _child_schema(schema, key)
            if key not in got:
                found.append(f"pruned {where}")
            elif key not in sent:
                if "default" not in child or child["default"] != got[key]:
                    found.append(f"added {where} = {json.dumps(got[key])}")
            else:
                found += differences(sent[key], got[key], child, where)
        return found
    if isinstance(sent, list) and isinstance(got, list) and len(sent) == len(got):
        items = schema.get("items") or {}
        return [
            line
            for i, (a, b) in enumerate(zip(sent, got, strict=True))
            for line in differences(a, b, items, f"{path}[{i}]")
        ]
    return [] if sent == got else [f"changed {path}: {json.dumps(sent)} -> {json.dumps(got)}"]


def _child_schema(schema: dict[str, Any], key: str) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    if key in properties:
        return properties[key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def without_server_metadata(sent: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    """``got`` less the metadata the server sets (and the namespace, if flyray left it out)."""
    got = copy.deepcopy(got)
    metadata = got["metadata"]
    for key in SERVER_SET_METADATA:
        metadata.pop(key, None)
    if "namespace" not in sent["metadata"]:
        assert metadata.pop("namespace") == "default"
    return got


def schema() -> dict[str, Any]:
    return json.loads(require_schema().read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_api_server_keeps_every_field_flyray_writes(name: str, kube_api: Any) -> None:
    from kubernetes import client

    manifest = rendered(name)
    legacy = {f for f in LEGACY_FIELDS if f.split(".")[1] in manifest["spec"]}
    if legacy:  # the manifest is for an old operator: only the legacy field may be refused
        with pytest.raises(client.ApiException) as info:
            dry_run_create(kube_api, manifest)
        assert info.value.status == 400
        refused = json.loads(info.value.body)["message"]
        assert refused.endswith('strict decoding error: unknown field "spec.runtimeEnv"'), refused
        manifest = copy.deepcopy(manifest)
        for field in legacy:
            del manifest["spec"][field.split(".")[1]]
    got = dry_run_create(kube_api, manifest)
    assert got["metadata"]["uid"]  # the server made it (and stored nothing: a dry run)
    assert differences(manifest, without_server_metadata(manifest, got), schema()) == []


def _misspelled(manifest: dict[str, Any]) -> dict[str, Any]:
    manifest = copy.deepcopy(manifest)
    manifest["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["nodeSelektor"] = {}
    manifest["spec"]["shutdownAfterJobFinishez"] = True
    return manifest


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        (
            _misspelled,
            400,
            [
                'unknown field "spec.rayClusterSpec.headGroupSpec.template.spec.nodeSelektor"',
                'unknown field "spec.shutdownAfterJobFinishez"',
            ],
        ),
        (
            lambda m: {**m, "spec": {**m["spec"], "managedBy": "someone-else"}},
            422,
            ["spec.managedBy", "must be either 'ray.io/kuberay-operator'"],
        ),
        (
            lambda m: {**m, "spec": {**m["spec"], "entrypointNumCpus": "two"}},
            422,
            ["spec.entrypointNumCpus", "must be of type number"],
        ),
    ],
    ids=["misspelled-fields", "cel-rule", "wrong-type"],
)
def test_the_api_server_rejects_what_the_schema_forbids(
    change: Any, status: int, words: list[str], kube_api: Any
) -> None:
    from kubernetes import client

    with pytest.raises(client.ApiException) as info:
        dry_run_create(kube_api, change(rendered("spec_example")))
    message = json.loads(info.value.body)["message"]
    assert info.value.status == status, message
    for word in words:
        assert word in message, message


def test_differences_sees_what_the_server_dropped_changed_or_added() -> None:
    schema = {"properties": {"a": {"default": 1}, "b": {"properties": {"c": {}}}}}
    assert differences({"b": {"c": [1]}}, {"a": 1, "b": {"c": [1]}}, schema) == []
    assert differences({"b": {"c": 1, "d": 2}}, {"a": 2, "b": {"c": "1"}}, schema) == [
        "added a = 2",
        'changed b.c: 1 -> "1"',
        "pruned b.d",
    ]
