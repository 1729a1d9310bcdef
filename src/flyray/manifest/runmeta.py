"""What a run's own options add to its manifest: labels, annotations, service account, env vars.

``with_runcontext(labels=..., annotations=..., service_account=...)`` set them for one run;
flyray's own labels and annotations (how it finds its objects) cannot be overridden. Pure:
the manifest is copied, never changed in place.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from flyray.errors import ConfigError
from flyray.manifest.labels import FLYRAY_PREFIX, MANAGED_BY_LABEL

__all__ = ["apply_run_options", "check_labels"]

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
_RESERVED = (FLYRAY_PREFIX, MANAGED_BY_LABEL)


def check_labels(field: str, values: Mapping[str, str], *, label_values: bool) -> None:
    """Kubernetes' rules for label (or annotation) keys, and with ``label_values`` for values."""
    for key, value in values.items():
        if not isinstance(key, str) or not _valid_key(key):
            raise ConfigError(
                f"{field}[{key!r}]",
                key,
                "must be a Kubernetes key: an optional DNS prefix and '/', then at most 63 "
                "letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            )
        if key.startswith(_RESERVED):
            raise ConfigError(f"{field}[{key!r}]", key, "is set by flyray, which finds runs by it")
        if not isinstance(value, str):
            raise ConfigError(f"{field}[{key!r}]", value, "must be a string")
        if label_values and value and not _NAME.match(value):
            raise ConfigError(
                f"{field}[{key!r}]",
                value,
                "must be a Kubernetes label value: empty or at most 63 letters, digits, '-', "
                "'_' or '.', starting and ending with a letter or digit",
            )


def apply_run_options(
    manifest: Mapping[str, Any],
    *,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    service_account: str | None,
    env_vars: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The manifest with the run's labels and annotations, and its service account on each pod.

    ``env_vars`` are for a batch Job (a RayJob takes them in its runtime env): they join the
    container's env, replacing a variable of the same name.
    """
    check_labels("labels", labels, label_values=True)
    check_labels("annotations", annotations, label_values=False)
    result = copy.deepcopy(dict(manifest))
    metadata = result["metadata"]
    metadata["labels"] = {**labels, **metadata.get("labels", {})}
    metadata["annotations"] = {**annotations, **metadata.get("annotations", {})}
    for pod in _pod_specs(result):
        if service_account is not None:
            pod["serviceAccountName"] = service_account
        if env_vars:
            for container in pod["containers"]:
                env = [e for e in container.get("env", []) if e.get("name") not in env_vars]
                env += [{"name": k, "value": v} for k, v in sorted(env_vars.items())]
                container["env"] = env
    return result


def _pod_specs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod specs a RayJob (head and worker groups) or a batch Job creates."""
    spec = manifest["spec"]
    if manifest["kind"] != "RayJob":
        return [spec["template"]["spec"]]
    cluster = spec["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]
    return [group["template"]["spec"] for group in groups]


def _valid_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(_NAME.match(name)) and (not prefix or bool(_PREFIX.match(prefix)))
