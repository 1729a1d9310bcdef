"""``PodTemplate``: a user's Kubernetes pod customisation, kept as plain JSON-able data."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from flyray.errors import ConfigError

__all__ = ["PodTemplate", "as_pod_template", "check_pod_template"]


@dataclass
class PodTemplate:
    """A pod spec plus labels and annotations; ``primary_container_name`` names the main one.

    ``pod_spec`` is a dict in Kubernetes JSON form (``{"containers": [...], "volumes": ...}``) or
    a ``kubernetes.client.V1PodSpec``, which is converted without importing the client here.
    """

    pod_spec: Any = None
    primary_container_name: str = "primary"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pod_spec = _spec_dict("PodTemplate.pod_spec", self.pod_spec)

    def to_template_spec(self) -> dict[str, Any]:
        """A Kubernetes PodTemplateSpec: ``{"metadata": {...}, "spec": {...}}`` (a copy)."""
        metadata: dict[str, Any] = {}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        return {"metadata": metadata, "spec": copy.deepcopy(self.pod_spec)}


def as_pod_template(field_name: str, value: object) -> PodTemplate | None:
    """Accept a PodTemplate, a PodTemplateSpec dict (with "spec") or a bare PodSpec dict."""
    if value is None or isinstance(value, PodTemplate):
        return value
    if isinstance(value, dict) and "spec" in value:
        metadata = value.get("metadata") or {}
        return PodTemplate(
            pod_spec=_spec_dict(f"{field_name}.spec", value["spec"]),
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
        )
    return PodTemplate(pod_spec=_spec_dict(field_name, value))


def check_pod_template(field_name: str, value: object) -> str | PodTemplate | None:
    """A task's or environment's pod template: a ``PodTemplate`` (or its dict form), or a name."""
    if value is None or isinstance(value, str):
        return value
    return as_pod_template(field_name, value)


def _spec_dict(field_name: str, spec: object) -> dict[str, Any]:
    if spec is None:
        return {"containers": []}
    if hasattr(spec, "to_dict") and type(spec).__module__.startswith("kubernetes."):
        from kubernetes.client import ApiClient  # only users of the client pass its models

        spec = ApiClient().sanitize_for_serialization(spec)
    if not isinstance(spec, dict):
        raise ConfigError(field_name, spec, "must be a pod spec dict or a kubernetes V1PodSpec")
    containers = spec.get("containers", [])
    if not isinstance(containers, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name"), str) for c in containers
    ):
        raise ConfigError(
            f"{field_name}.containers", containers, "must be a list of containers with names"
        )
    return copy.deepcopy(spec)
