"""Pod templates for Ray nodes: resources on the Ray container, which KubeRay wants first.

A node's ``requests``/``limits`` may hold Flyte's (request, limit) pairs; they are split here
into the container's requests and limits. A GPU type ("T4:1", ``GPU("A100", 1, "1g.5gb")``)
also steers the pod: the required node affinity and the tolerations Flyte's backend adds for
that accelerator (see docs/gpus.md).
"""

from __future__ import annotations

import re
from typing import Any

from flyray.config.accelerators import Device, node_label_value
from flyray.config.pod_template import PodTemplate
from flyray.config.quantities import parse_quantity
from flyray.config.resources import GPU_RESOURCE_KEY, Resources
from flyray.config.settings import (
    DEFAULT_ACCELERATOR_LABEL,
    DEFAULT_ACCELERATOR_PARTITION_LABEL,
)
from flyray.errors import ConfigError

__all__ = [
    "SHM_VOLUME",
    "TPU_DEVICE_LABEL",
    "TPU_TOPOLOGY_LABEL",
    "add_accelerator_scheduling",
    "node_device",
    "pod_spec_from_resources",
    "ray_pod_template",
    "resource_requirements",
    "split_requests_limits",
]

SHM_VOLUME = "shared-mem"
# GKE's TPU node labels, which Flyte's backend uses for TPUs whatever the GPU label is.
TPU_DEVICE_LABEL = "cloud.google.com/gke-tpu-accelerator"
TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
_CONTAINER_FIELDS = ("cpu", "memory", "gpu", "disk")
_KUBERNETES_REFUSES = "Kubernetes refuses a container whose request is above its limit"
_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def split_requests_limits(
    requests: Resources | None, limits: Resources | None, *, where: str = "resources"
) -> tuple[Resources | None, Resources | None]:
    """A container's requests and limits, each without pairs; limits default to the requests.

    A (request, limit) pair gives its first element to the requests and its second to the
    limits, wherever it stands (Flyte's ``get_proto_resources`` does this for a task's
    resources). The same request or limit given twice with different values is an error, as
    is a request above its limit.
    """
    asked: dict[str, Any] = {}
    capped: dict[str, Any] = {}
    for kind, resources in (("requests", requests), ("limits", limits)):
        for name in _CONTAINER_FIELDS:
            value = None if resources is None else getattr(resources, name)
            if isinstance(value, tuple):
                _put(asked, name, value[0], f"{where}.{kind}.{name}")
                _put(capped, name, value[1], f"{where}.{kind}.{name}")
            elif value is not None:
                _put(asked if kind == "requests" else capped, name, value, f"{where}.{kind}.{name}")
    if limits is None:
        for name, value in asked.items():
            capped.setdefault(name, value)
    _check_within(asked, capped, where)
    return (Resources(**asked) if asked else None, Resources(**capped) if capped else None)


def resource_requirements(
    requests: Resources | None,
    limits: Resources | None,
    *,
    gpu_key: str = GPU_RESOURCE_KEY,
    where: str = "resources",
) -> dict[str, dict[str, str]]:
    """Kubernetes ``resources`` of a container; limits default to the requests.

    Ray sizes a node from its limits (KubeRay reads num-cpus and memory from them), so a node
    declared with requests only gets the same limits, as Flyte does. Pairs are split as
    ``split_requests_limits`` says.
    """
    asked, capped = split_requests_limits(requests, limits, where=where)
    out: dict[str, dict[str, str]] = {}
    for kind, resources in (("requests", asked), ("limits", capped)):
        quantities = {} if resources is None else resources.to_kubernetes(gpu_key=gpu_key)
        if quantities:
            out[kind] = quantities
    return out


def node_device(requests: Resources | None, limits: Resources | None) -> Device | None:
    """The accelerator a node asks for: the requests' device, else the limits'."""
    for resources in (requests, limits):
        device = None if resources is None else resources.get_device()
        if device is not None:
            return device
    return None


def pod_spec_from_resources(
    *,
    primary_container_name: str,
    requests: Resources | None = None,
    limits: Resources | None = None,
    k8s_gpu_resource_key: str = GPU_RESOURCE_KEY,
) -> dict[str, Any]:
    """A PodSpec with one container carrying ``requests``/``limits`` (and /dev/shm if asked).

    ``k8s_gpu_resource_key`` is the key of NVIDIA GPUs and bare GPU counts; AMD, Neuron,
    Gaudi and TPU devices use their own keys.
    """
    container: dict[str, Any] = {"name": primary_container_name}
    resources = resource_requirements(requests, limits, gpu_key=k8s_gpu_resource_key)
    if resources:
        container["resources"] = resources
    spec: dict[str, Any] = {"containers": [container]}
    _add_shm(spec, container, requests, limits)
    return spec


def add_accelerator_scheduling(
    spec: dict[str, Any],
    device: Device | None,
    *,
    device_label: str = DEFAULT_ACCELERATOR_LABEL,
    partition_label: str = DEFAULT_ACCELERATOR_PARTITION_LABEL,
    where: str = "resources",
) -> None:
    """Steer a PodSpec to nodes with ``device`` as Flyte's backend does; no-op for a count.

    A required node-affinity term ``<device_label> In [<value>]`` joins every existing term
    (terms are OR'd, expressions within one AND'd), plus a NoSchedule toleration of the same
    key and value; a partition adds the same for ``partition_label``. TPUs use GKE's labels.
    """
    value = None if device is None else node_label_value(device)
    if device is None or value is None:
        return
    if device.device_class == "APPLE_SILICON":
        raise ConfigError(
            f"{where}.gpu",
            device.device,
            "has no Kubernetes node (it is a Mac's GPU): run the task in local mode",
        )
    if device.device_class == "TPU":
        device_label, partition_label = TPU_DEVICE_LABEL, TPU_TOPOLOGY_LABEL
    wanted = [(device_label, value)]
    if device.partition is not None:
        wanted.append((partition_label, device.partition))
    for key, label_value in wanted:
        if not _LABEL_VALUE.match(label_value):
            raise ConfigError(
                f"{where}.gpu",
                device.device,
                f"must give a valid Kubernetes label value for {key} (got {label_value!r}): "
                "letters, digits, '-', '_', '.', at most 63",
            )
        _require_node_label(spec, key, label_value)
        _tolerate(spec, key, label_value)


def ray_pod_template(
    *,
    container_name: str,
    requests: Resources | None = None,
    limits: Resources | None = None,
    pod_template: PodTemplate | None = None,
    image: str | None = None,
    device_label: str = DEFAULT_ACCELERATOR_LABEL,
    partition_label: str = DEFAULT_ACCELERATOR_PARTITION_LABEL,
    where: str = "resources",
) -> dict[str, Any]:
    """A PodTemplateSpec whose first container is the Ray container, named ``container_name``.

    The Ray container is the user's container named ``container_name`` or the template's
    ``primary_container_name``; without one, a new container goes first and the user's
    containers follow as sidecars. Resources from ``requests``/``limits`` override the same
    keys in the user's container; everything else in the template is kept. A GPU type adds
    node affinity and tolerations (``add_accelerator_scheduling``).
    """
    template = (pod_template or PodTemplate()).to_template_spec()
    spec = template["spec"]
    primary = pod_template.primary_container_name if pod_template else container_name
    containers = spec.setdefault("containers", [])
    index = next(
        (i for i, c in enumerate(containers) if c["name"] in (container_name, primary)), None
    )
    ray = containers.pop(index) if index is not None else {}
    ray["name"] = container_name
    containers.insert(0, ray)
    if image and not ray.get("image"):
        ray["image"] = image
    _merge_resources_into(spec, ray, requests, limits, where=where)
    add_accelerator_scheduling(
        spec,
        node_device(requests, limits),
        device_label=device_label,
        partition_label=partition_label,
        where=where,
    )
    return _sorted(template)


def _put(target: dict[str, Any], name: str, value: Any, field: str) -> None:
    """Set ``target[name]``; the same field given twice must agree."""
    if name in target and not _same(name, target[name], value):
        raise ConfigError(
            field,
            value,
            f"conflicts with {target[name]!r} given for the same {name} (a (request, limit) "
            "pair sets both): give each request and limit once",
        )
    target[name] = value


def _same(name: str, one: Any, other: Any) -> bool:
    if name == "gpu":
        return Resources(gpu=one).get_device() == Resources(gpu=other).get_device()
    return parse_quantity(name, one) == parse_quantity(name, other)


def _check_within(asked: dict[str, Any], capped: dict[str, Any], where: str) -> None:
    """Requests at most their limits; GPU requests equal to their limits, as Kubernetes wants."""
    for name in asked.keys() & capped.keys():
        if name == "gpu":
            if not _same("gpu", asked["gpu"], capped["gpu"]):
                raise ConfigError(
                    f"{where}.limits.gpu",
                    capped["gpu"],
                    f"must match the GPU request ({asked['gpu']!r}): Kubernetes needs GPU "
                    "limits equal to requests",
                )
        elif parse_quantity(name, asked[name]) > parse_quantity(name, capped[name]):
            raise ConfigError(
                f"{where}.requests.{name}",
                asked[name],
                f"must not exceed the limit {capped[name]!r} ({_KUBERNETES_REFUSES})",
            )


def _require_node_label(spec: dict[str, Any], key: str, value: str) -> None:
    expression = {"key": key, "operator": "In", "values": [value]}
    node_affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    required = node_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = required.setdefault("nodeSelectorTerms", [])
    if not terms:
        terms.append({})
    for term in terms:
        expressions = term.setdefault("matchExpressions", [])
        if expression not in expressions:
            expressions.append(expression)


def _tolerate(spec: dict[str, Any], key: str, value: str) -> None:
    toleration = {"effect": "NoSchedule", "key": key, "operator": "Equal", "value": value}
    tolerations = spec.setdefault("tolerations", [])
    if toleration not in tolerations:
        tolerations.append(toleration)


def _merge_resources_into(
    spec: dict[str, Any],
    container: dict[str, Any],
    requests: Resources | None,
    limits: Resources | None,
    *,
    where: str,
) -> None:
    for kind, values in resource_requirements(requests, limits, where=where).items():
        container.setdefault("resources", {}).setdefault(kind, {}).update(values)
    _add_shm(spec, container, requests, limits)


def _add_shm(
    spec: dict[str, Any],
    container: dict[str, Any],
    requests: Resources | None,
    limits: Resources | None,
) -> None:
    """Mount a memory-backed /dev/shm if asked for and the container has none yet."""
    shm = _shm(requests, limits)
    if shm is None or _mounts_dev_shm(container):
        return
    empty_dir = {"medium": "Memory"} if shm == "auto" else {"medium": "Memory", "sizeLimit": shm}
    spec.setdefault("volumes", []).append({"name": SHM_VOLUME, "emptyDir": empty_dir})
    container.setdefault("volumeMounts", []).append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})


def _mounts_dev_shm(container: dict[str, Any]) -> bool:
    return any(m.get("mountPath") == "/dev/shm" for m in container.get("volumeMounts", []))


def _shm(requests: Resources | None, limits: Resources | None) -> str | None:
    for resources in (limits, requests):
        if resources is not None and resources.shm is not None:
            shm = resources.shm
            return shm.strip() if isinstance(shm, str) else str(shm)
    return None


def _sorted(value: Any) -> Any:
    """Sort dict keys recursively so the same input always renders the same bytes."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value
