"""The Ray nodes a RayJob manifest asks for, derived the way the KubeRay operator does.

The local-cluster executor starts these nodes; it reads the manifest, never the Python config,
so what runs on this machine is what Kubernetes would get. From the Ray container
(``containers[0]``) of each group: ``num-cpus`` from the CPU limit, else the request, rounded
up; ``memory`` from the memory limit; ``num-gpus`` from any limit whose key ends in ``gpu``;
a ``rayStartParams`` value always wins. Each worker node also gets its group as a node label
(``flyray.io/group``) and as a custom resource, so ``@ray.remote(resources={GROUP: 1})``
pins work to a group. ``from_manifest.new_cluster`` makes those nodes a LocalRayCluster.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flyray.config.quantities import parse_quantity
from flyray.errors import ManifestError
from flyray.executors.localcluster.raystart import NodeSpec
from flyray.manifest.labels import GROUP_LABEL

__all__ = ["GROUP_RESOURCE_UNITS", "cluster_nodes", "group_node", "head_node"]

GROUP_RESOURCE_UNITS = 1000  # per node: enough that the group resource never limits concurrency


def cluster_nodes(manifest: Mapping[str, Any]) -> tuple[NodeSpec, list[NodeSpec]]:
    """The head and every worker replica of a RayJob's ``rayClusterSpec``."""
    cluster = (manifest.get("spec") or {}).get("rayClusterSpec")
    if not cluster:
        raise ManifestError("the RayJob has no rayClusterSpec: there is no cluster to start")
    head = head_node(cluster)
    workers = []
    for group in cluster.get("workerGroupSpecs") or []:
        name = group.get("groupName")
        if not name:
            raise ManifestError("a workerGroupSpecs entry of the RayJob has no groupName")
        replicas = max(group.get("replicas") or 0, group.get("minReplicas") or 0)
        for index in range(replicas * (group.get("numOfHosts") or 1)):
            workers.append(_node(f"{name}-{index}", group, group_name=name))
    return head, workers


def head_node(cluster: Mapping[str, Any]) -> NodeSpec:
    """The head node of a ``rayClusterSpec``."""
    if not cluster.get("headGroupSpec"):
        raise ManifestError("the RayJob's rayClusterSpec has no headGroupSpec")
    return _node("head", cluster["headGroupSpec"], head=True)


def group_node(name: str, group: Mapping[str, Any]) -> NodeSpec:
    """A worker node of ``group`` (a ``workerGroupSpecs`` entry), named ``name``."""
    return _node(name, group, group_name=group.get("groupName"))


def _node(
    name: str, group: Mapping[str, Any], *, head: bool = False, group_name: str | None = None
) -> NodeSpec:
    """One node of a group: its rayStartParams, else what its Ray container's resources say.

    A param that is present wins even when it is "0" (``num-cpus: "0"`` keeps work off the head).
    """
    params = {key: str(value) for key, value in (group.get("rayStartParams") or {}).items()}
    resources = _container(name, group).get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    custom = _resources(name, params.pop("resources", ""))
    labels = dict(_labels(_unquote(params.pop("labels", ""))))
    if group_name is not None:
        custom.setdefault(group_name, GROUP_RESOURCE_UNITS)
        labels.setdefault(GROUP_LABEL, group_name)
    cpus, gpus = params.pop("num-cpus", None), params.pop("num-gpus", None)
    return NodeSpec(
        name=name,
        head=head,
        num_cpus=_cpus(limits, requests) if cpus is None else float(cpus),
        num_gpus=_gpus(limits) if gpus is None else float(gpus),
        memory=_memory(params.pop("memory", None), limits),
        resources=custom,
        labels=labels,
        params=params,
    )


def _container(name: str, group: Mapping[str, Any]) -> Mapping[str, Any]:
    """The Ray container of a group: ``containers[0]`` of its pod template, as KubeRay takes it."""
    containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers:
        raise ManifestError(f"the pod template of Ray node {name!r} has no containers")
    return containers[0]


def _cpus(limits: Mapping[str, Any], requests: Mapping[str, Any]) -> int | None:
    """CPUs from the CPU limit, else (no or zero limit) the request, rounded up; None if neither."""
    for quantities in (limits, requests):
        cpus = _nonzero("cpu", quantities.get("cpu"))
        if cpus is not None:
            return math.ceil(cpus)
    return None


def _gpus(limits: Mapping[str, Any]) -> int | None:
    """GPUs from the non-zero limits whose key ends in "gpu" (e.g. ``nvidia.com/gpu``)."""
    counts = [_nonzero(key, v) for key, v in limits.items() if key.endswith("gpu")]
    found = [count for count in counts if count is not None]
    return math.ceil(sum(found, Decimal(0))) if found else None


def _memory(param: str | None, limits: Mapping[str, Any]) -> int | None:
    """Bytes from the ``memory`` param, else from a non-zero memory limit (a request is ignored)."""
    if param is not None:
        return int(param)
    memory = _nonzero("memory", limits.get("memory"))
    return None if memory is None else math.ceil(memory)


def _nonzero(field: str, quantity: Any) -> Decimal | None:
    """A quantity as a Decimal, or None when it is absent or zero (KubeRay skips zero values)."""
    if quantity is None:
        return None
    value = parse_quantity(field, quantity)
    return value if value else None


def _unquote(text: str) -> str:
    """A param value as bash sees it: KubeRay pastes params unquoted into a bash line.

    Users therefore quote JSON themselves (``'"{\\"custom\\": 1}"'`` or ``"'{...}'"``); a value that
    starts with a quote is split the way the shell would, and must be a single word.
    """
    text = text.strip()
    if not text or text[0] not in "'\"":
        return text
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ManifestError(f"rayStartParams value {text!r} is not valid shell quoting") from exc
    if len(words) != 1:
        raise ManifestError(f"rayStartParams value {text!r} is more than one shell word")
    return words[0]


def _resources(name: str, text: str) -> dict[str, float]:
    """The ``resources`` param (a JSON object, possibly shell-quoted) as a dict."""
    text = _unquote(text)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"rayStartParams.resources of {name!r} is not JSON: {text!r}") from exc
    if not isinstance(value, dict):
        raise ManifestError(f"rayStartParams.resources of {name!r} is not an object: {text!r}")
    return value


def _labels(text: str) -> list[tuple[str, str]]:
    """The ``labels`` param ("k=v,k2=v2") as pairs."""
    pairs = [item.split("=", 1) for item in text.split(",") if "=" in item]
    return [(key.strip(), value.strip()) for key, value in pairs]
