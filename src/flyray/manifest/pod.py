"""Pod templates for Ray nodes: resources on the Ray container, which KubeRay wants first."""

from __future__ import annotations

from typing import Any

from flyray.config.pod_template import PodTemplate
from flyray.config.resources import GPU_RESOURCE_KEY, Resources

__all__ = ["SHM_VOLUME", "pod_spec_from_resources", "ray_pod_template", "resource_requirements"]

SHM_VOLUME = "shared-mem"


def resource_requirements(
    requests: Resources | None,
    limits: Resources | None,
    *,
    gpu_key: str = GPU_RESOURCE_KEY,
) -> dict[str, dict[str, str]]:
    """Kubernetes ``resources`` of a container; limits default to the requests.

    Ray sizes a node from its limits (KubeRay reads num-cpus and memory from them), so a node
    declared with requests only gets the same limits, as Flyte does.
    """
    out: dict[str, dict[str, str]] = {}
    if requests is not None and requests.to_kubernetes(gpu_key=gpu_key):
        out["requests"] = requests.to_kubernetes(gpu_key=gpu_key)
    effective_limits = limits if limits is not None else requests
    if effective_limits is not None and effective_limits.to_kubernetes(gpu_key=gpu_key):
        out["limits"] = effective_limits.to_kubernetes(gpu_key=gpu_key)
    return out


def pod_spec_from_resources(
    *,
    primary_container_name: str,
    requests: Resources | None = None,
    limits: Resources | None = None,
    k8s_gpu_resource_key: str = GPU_RESOURCE_KEY,
) -> dict[str, Any]:
    """A PodSpec with one container carrying ``requests``/``limits`` (and /dev/shm if asked)."""
    container: dict[str, Any] = {"name": primary_container_name}
    resources = resource_requirements(requests, limits, gpu_key=k8s_gpu_resource_key)
    if resources:
        container["resources"] = resources
    spec: dict[str, Any] = {"containers": [container]}
    shm = _shm(requests, limits)
    if shm is not None:
        empty_dir = (
            {"medium": "Memory"} if shm == "auto" else {"medium": "Memory", "sizeLimit": shm}
        )
        spec["volumes"] = [{"name": SHM_VOLUME, "emptyDir": empty_dir}]
        container["volumeMounts"] = [{"name": SHM_VOLUME, "mountPath": "/dev/shm"}]
    return spec


def ray_pod_template(
    *,
    container_name: str,
    requests: Resources | None = None,
    limits: Resources | None = None,
    pod_template: PodTemplate | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    """A PodTemplateSpec whose first container is the Ray container, named ``container_name``.

    The Ray container is the user's container named ``container_name`` or the template's
    ``primary_container_name``; without one, a new container goes first and the user's
    containers follow as sidecars. Resources from ``requests``/``limits`` override the same
    keys in the user's container; everything else in the template is kept.
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
    _merge_resources_into(spec, ray, requests, limits)
    return _sorted(template)


def _merge_resources_into(
    spec: dict[str, Any],
    container: dict[str, Any],
    requests: Resources | None,
    limits: Resources | None,
) -> None:
    generated = pod_spec_from_resources(
        primary_container_name=container["name"], requests=requests, limits=limits
    )
    ours = generated["containers"][0]
    for kind, values in ours.get("resources", {}).items():
        container.setdefault("resources", {}).setdefault(kind, {}).update(values)
    if "volumes" in generated and not _mounts_dev_shm(container):
        spec.setdefault("volumes", []).extend(generated["volumes"])
        container.setdefault("volumeMounts", []).extend(ours["volumeMounts"])


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
