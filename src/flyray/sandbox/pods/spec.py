"""What a kubelet reads from a pod's spec to start a container: env and argv.

Pure functions over the pod as the API returns it (a JSON dict, camelCase keys), so they are
tested without a cluster. They follow Kubernetes' rules: ``envFrom`` first, then ``env`` in
order; ``valueFrom`` reads the pod's own fields (``fieldRef``), its container's resources
(``resourceFieldRef``: CPU rounded up to whole units, memory in bytes, of the limit, else the
request, else the node's capacity), Secrets and ConfigMaps (through ``lookup``); ``$(VAR)`` in
values, commands and args is replaced by a variable defined before it, ``$$`` is a literal
``$``, and an unknown ``$(VAR)`` stays as written.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from flyray.config.quantities import parse_quantity

__all__ = ["PodSpecError", "container_argv", "container_env", "expand", "pod_field"]

# (kind "secret" | "configmap", name) -> its data (a Secret's values base64, as the API has them)
Lookup = Callable[[str, str], Mapping[str, str] | None]
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_LABEL = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
# (kind, its field in envFrom, its field in valueFrom)
_SOURCES = (
    ("secret", "secretRef", "secretKeyRef"),
    ("configmap", "configMapRef", "configMapKeyRef"),
)


class PodSpecError(ValueError):
    """The pod cannot start: the message says which variable and why (a kubelet's
    ``CreateContainerConfigError``)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """``text`` with ``$(VAR)`` references replaced as Kubernetes does."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(one, text)


def container_argv(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """``command`` + ``args``, each expanded; a container without a command is refused
    (there is no image here to take an entrypoint from)."""
    command = [expand(part, env) for part in container.get("command") or []]
    if not command:
        raise PodSpecError(f"container {container['name']!r} has no command (no image here)")
    return command + [expand(part, env) for part in container.get("args") or []]


def container_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    base: Mapping[str, str],
    lookup: Lookup,
    node_capacity: Mapping[str, str],
) -> dict[str, str]:
    """The environment of ``container``: ``base`` (what the "image" sets), then its own."""
    env = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, field, _ in _SOURCES:
            if field in source:
                ref = source[field]
                data = _data(kind, ref["name"], lookup, optional=ref.get("optional", False))
                env.update({prefix + key: value for key, value in data.items()})
    for variable in container.get("env") or []:
        name = variable["name"]
        if "valueFrom" in variable:
            value = _value_from(pod, container, variable["valueFrom"], lookup, node_capacity)
            if value is None:  # an optional key that is absent: the variable is not set
                continue
            env[name] = value
        else:
            env[name] = expand(variable.get("value", ""), env)
    return env


def _value_from(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    source: Mapping[str, Any],
    lookup: Lookup,
    capacity: Mapping[str, str],
) -> str | None:
    if "fieldRef" in source:
        return pod_field(pod, source["fieldRef"]["fieldPath"])
    if "resourceFieldRef" in source:
        return _resource(pod, container, source["resourceFieldRef"], capacity)
    for kind, _, field in _SOURCES:
        if field in source:
            ref = source[field]
            optional = ref.get("optional", False)
            data = _data(kind, ref["name"], lookup, optional=optional)
            if ref["key"] not in data:
                if optional:
                    return None
                raise PodSpecError(f"couldn't find key {ref['key']} in {kind} {ref['name']}")
            return data[ref["key"]]
    raise PodSpecError(f"valueFrom {dict(source)} is not supported here")


def _data(kind: str, name: str, lookup: Lookup, *, optional: bool) -> dict[str, str]:
    found = lookup(kind, name)
    if found is None:
        if optional:
            return {}
        raise PodSpecError(f'{kind} "{name}" not found')
    if kind == "secret":
        return {key: base64.b64decode(value).decode() for key, value in found.items()}
    return dict(found)


def pod_field(pod: Mapping[str, Any], path: str) -> str:
    """A ``fieldRef``'s value: the pod's name, namespace, uid, addresses, a label..."""
    metadata, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace"),
        "metadata.uid": metadata.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.hostIPs": ",".join(entry["ip"] for entry in status.get("hostIPs") or []),
        "status.podIPs": ",".join(entry["ip"] for entry in status.get("podIPs") or []),
    }
    if path in simple:
        return simple[path] or ""
    keyed = _LABEL.match(path)
    if keyed:
        return (metadata.get(keyed.group(1)) or {}).get(keyed.group(2), "")
    raise PodSpecError(f"fieldRef {path!r} is not supported")


def _resource(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    ref: Mapping[str, Any],
    capacity: Mapping[str, str],
) -> str:
    if ref.get("containerName"):
        (container,) = [c for c in pod["spec"]["containers"] if c["name"] == ref["containerName"]]
    kind, _, resource = ref["resource"].partition(".")
    resources = container.get("resources") or {}
    declared = (resources.get(kind) or {}).get(resource)
    if declared is None and kind == "requests":
        declared = (resources.get("limits") or {}).get(resource)
    quantity = parse_quantity(ref["resource"], declared or capacity[resource])
    divisor = parse_quantity("divisor", ref.get("divisor") or "1")
    return str(math.ceil(Decimal(quantity) / divisor))
