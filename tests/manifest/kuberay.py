"""Test helpers: check a RayJob the way the API server and the KubeRay operator would.

``schema_errors`` validates against KubeRay's CRD schema (``../shared/kuberay``) in STRICT
mode: every object schema that lists ``properties`` gets ``additionalProperties: false``, so
a misspelled field fails here instead of being dropped by the API server.
``operator_violations`` checks the rules the operator enforces at reconcile time, which the
schema cannot express (``../shared/kuberay/README.md``).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).parents[2].parent / "shared" / "kuberay"
RAYJOB_SCHEMA = SHARED / "rayjob-v1.schema.json"

_DNS1035 = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)?$")
_SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")


def require_schema() -> Path:
    """The RayJob schema's path; skips the calling test where ``../shared`` is absent."""
    if not RAYJOB_SCHEMA.is_file():
        pytest.skip(f"KubeRay schemas not found at {SHARED} (a checkout outside the workplace)")
    return RAYJOB_SCHEMA


@functools.cache
def strict_schema(*, legacy_runtime_env: bool = False) -> dict[str, Any]:
    """The RayJob schema with ``additionalProperties: false`` on every object with properties.

    ``legacy_runtime_env`` adds the base64 ``spec.runtimeEnv`` that KubeRay < 1.1.0 read
    (the v1.7.0 schema no longer lists it), for manifests rendered for an old operator.
    """
    schema = copy.deepcopy(json.loads(require_schema().read_text()))
    if legacy_runtime_env:
        schema["properties"]["spec"]["properties"]["runtimeEnv"] = {"type": "string"}
    _make_strict(schema)
    return schema


def schema_errors(manifest: dict[str, Any], *, legacy_runtime_env: bool = False) -> list[str]:
    """Every strict-schema error as ``path: message``; empty when the manifest is valid."""
    import jsonschema

    validator = jsonschema.Draft7Validator(strict_schema(legacy_runtime_env=legacy_runtime_env))
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.path)))
    return [f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors]


def operator_violations(manifest: dict[str, Any]) -> list[str]:
    """Every operator rule the manifest breaks, one sentence each; empty when it is fine."""
    spec = manifest.get("spec", {})
    problems = [
        *_name_rules(manifest.get("metadata", {})),
        *_job_rules(spec),
        *_runtime_env_rules(spec),
    ]
    cluster = spec.get("rayClusterSpec")
    if cluster is not None:
        problems += _cluster_rules(cluster)
    return problems


def _make_strict(node: Any) -> None:
    """Add ``additionalProperties: false`` wherever an object schema lists its properties."""
    if not isinstance(node, dict):
        return
    if "properties" in node:
        node.setdefault("additionalProperties", False)
        for child in node["properties"].values():
            _make_strict(child)
    for key in ("items", "additionalProperties", "not"):
        _make_strict(node.get(key))
    for key in ("anyOf", "allOf", "oneOf"):
        for child in node.get(key, []):
            _make_strict(child)


def _name_rules(metadata: dict[str, Any]) -> list[str]:
    name = metadata.get("name", "")
    problems = []
    if not isinstance(name, str) or len(name) > 47 or not _DNS1035.match(name):
        problems.append(f"metadata.name {name!r} must be a DNS-1035 label of at most 47 chars")
    for key, value in metadata.get("labels", {}).items():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(f"metadata.labels[{key!r}] {value!r} is not a valid label value")
    return problems


def _job_rules(spec: dict[str, Any]) -> list[str]:
    problems = []
    if ("rayClusterSpec" in spec) == ("clusterSelector" in spec):
        problems.append("spec needs exactly one of rayClusterSpec and clusterSelector")
    shutdown = spec.get("shutdownAfterJobFinishes", False)
    if spec.get("ttlSecondsAfterFinished", 0) > 0 and not shutdown:
        problems.append("spec.ttlSecondsAfterFinished > 0 needs shutdownAfterJobFinishes: true")
    if spec.get("suspend") and not shutdown:
        problems.append("spec.suspend needs shutdownAfterJobFinishes: true")
    if "deletionStrategy" in spec and shutdown:
        problems.append("spec.deletionStrategy cannot be combined with shutdownAfterJobFinishes")
    if "activeDeadlineSeconds" in spec and spec["activeDeadlineSeconds"] <= 0:
        problems.append("spec.activeDeadlineSeconds must be > 0")
    if "preRunningDeadlineSeconds" in spec and spec["preRunningDeadlineSeconds"] < 1:
        problems.append("spec.preRunningDeadlineSeconds must be >= 1")
    if spec.get("backoffLimit", 0) < 0:
        problems.append("spec.backoffLimit must be >= 0")
    if spec.get("submissionMode", "K8sJobMode") not in _SUBMISSION_MODES:
        problems.append(f"spec.submissionMode must be one of {_SUBMISSION_MODES}")
    if not str(spec.get("entrypoint", "")).strip():
        problems.append("spec.entrypoint must be a non-empty command")
    return problems


def _runtime_env_rules(spec: dict[str, Any]) -> list[str]:
    import yaml

    if "runtimeEnvYAML" in spec and "runtimeEnv" in spec:
        return ["spec may set runtimeEnvYAML or the old runtimeEnv, not both"]
    if "runtimeEnvYAML" not in spec:
        return []
    try:
        env = yaml.safe_load(spec["runtimeEnvYAML"])
    except yaml.YAMLError as exc:
        return [f"spec.runtimeEnvYAML must parse as YAML ({exc})"]
    return [] if isinstance(env, dict) else ["spec.runtimeEnvYAML must be a YAML mapping"]


def _cluster_rules(cluster: dict[str, Any]) -> list[str]:
    head = cluster.get("headGroupSpec", {})
    workers = cluster.get("workerGroupSpecs", [])
    problems = _group_rules("headGroupSpec", head)
    problems += _head_port_rules(head)
    names = [w.get("groupName") for w in workers]
    if len(set(names)) != len(names):
        problems.append(f"workerGroupSpecs group names must be unique, got {names}")
    for i, worker in enumerate(workers):
        where = f"workerGroupSpecs[{i}]"
        problems += _group_rules(where, worker) + _replica_rules(where, worker)
    return problems


def _group_rules(where: str, group: dict[str, Any]) -> list[str]:
    problems = [
        f"{where}.rayStartParams[{key!r}] must be a string, got {value!r}"
        for key, value in group.get("rayStartParams", {}).items()
        if not isinstance(value, str)
    ]
    containers = group.get("template", {}).get("spec", {}).get("containers", [])
    if not containers or not containers[0].get("name"):
        problems.append(f"{where}: the Ray container must come first and have a name")
    elif not containers[0].get("image"):
        problems.append(f"{where}: the Ray container {containers[0]['name']!r} has no image")
    return problems


def _head_port_rules(head: dict[str, Any]) -> list[str]:
    containers = head.get("template", {}).get("spec", {}).get("containers", [{}])
    ports = containers[0].get("ports") if containers else None
    if ports and not any(port.get("name") == "dashboard" for port in ports):
        return ["headGroupSpec: the Ray container lists ports but none is named 'dashboard'"]
    return []


def _replica_rules(where: str, group: dict[str, Any]) -> list[str]:
    lo, hi, replicas = group.get("minReplicas"), group.get("maxReplicas"), group.get("replicas")
    if lo is None or hi is None:
        return [f"{where}: minReplicas and maxReplicas must both be set"]
    if lo > hi:
        return [f"{where}: minReplicas {lo} must be <= maxReplicas {hi}"]
    if replicas is not None and not lo <= replicas <= hi:
        return [f"{where}: replicas {replicas} must be within [{lo}, {hi}]"]
    return []
