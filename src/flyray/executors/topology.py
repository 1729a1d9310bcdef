"""The Ray nodes a RayJob manifest asks for, derived the way the KubeRay operator does.

The local-cluster executor starts these nodes; it reads the manifest, never the Python config,
so what runs on this machine is what Kubernetes would get. From the Ray container
(``containers[0]``) of each group: ``num-cpus`` from the CPU limit, else the request, rounded
up; ``memory`` from the memory limit; ``num-gpus`` from any limit whose key ends in ``gpu``;
a ``rayStartParams`` value always wins. Each worker node also gets its group as a node label
(``flyray.io/group``) and as a custom resource, so ``@ray.remote(resources={GROUP: 1})``
pins work to a group.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flyray.config.quantities import parse_quantity
from flyray.errors import ManifestError
from flyray.executors.nodes import NodeSpec

__all__ = ["GROUP_LABEL", "GROUP_RESOURCE_UNITS", "cluster_nodes"]

GROUP_LABEL = "flyray.io/group"
GROUP_RESOURCE_UNITS = 1000  # per node: enough that the group resource never limits concurrency


def cluster_nodes(manifest: Mapping[str, Any]) -> tuple[NodeSpec, list[NodeSpec]]:
    """The head and every worker replica of a RayJob's ``rayClusterSpec``."""
    cluster = manifest.get("spec", {}).get("rayClusterSpec")
    if not cluster:
        raise ManifestError("the RayJob has no rayClusterSpec: there is no cluster to start")
    head = _node("head", cluster["headGroupSpec"], head=True)
    workers = []
    for group in cluster.get("workerGroupSpecs", []):
        name = group["groupName"]
        replicas = max(group.get("replicas", 0), group.get("minReplicas", 0))
        for index in range(replicas * group.get("numOfHosts", 1)):
            workers.append(_node(f"{name}-{index}", group, group_name=name))
    return head, workers


def _node(
    name: str, group: Mapping[str, Any], *, head: bool = False, group_name: str | None = None
) -> NodeSpec:
    params = dict(group.get("rayStartParams", {}))
    container = group["template"]["spec"]["containers"][0]
    limits = container.get("resources", {}).get("limits", {})
    requests = container.get("resources", {}).get("requests", {})
    resources = json.loads(params.pop("resources", "{}").strip("'\"") or "{}")
    labels = dict(_labels(params.pop("labels", "")))
    if group_name is not None:
        resources.setdefault(group_name, GROUP_RESOURCE_UNITS)
        labels.setdefault(GROUP_LABEL, group_name)
    return NodeSpec(
        name=name,
        head=head,
        num_cpus=_number(params.pop("num-cpus", None)) or _cpus(limits, requests),
        num_gpus=_number(params.pop("num-gpus", None)) or _gpus(limits),
        memory=_memory(params.pop("memory", None), limits),
        resources=resources,
        labels=labels,
        params=params,
    )


def _cpus(limits: Mapping[str, str], requests: Mapping[str, str]) -> int | None:
    quantity = limits.get("cpu", requests.get("cpu"))
    return None if quantity is None else math.ceil(parse_quantity("cpu", quantity))


def _gpus(limits: Mapping[str, str]) -> int | None:
    counts = [parse_quantity(key, v) for key, v in limits.items() if key.endswith("gpu")]
    return int(sum(counts, Decimal(0))) if counts else None


def _memory(param: str | None, limits: Mapping[str, str]) -> int | None:
    if param is not None:
        return int(param)
    quantity = limits.get("memory")
    return None if quantity is None else math.ceil(parse_quantity("memory", quantity))


def _number(value: str | None) -> float | None:
    return None if value is None else float(value)


def _labels(text: str) -> list[tuple[str, str]]:
    pairs = [item.split("=", 1) for item in text.split(",") if "=" in item]
    return [(key.strip(), value.strip()) for key, value in pairs]
