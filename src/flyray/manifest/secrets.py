"""A task's secrets on its pods: ``secretKeyRef`` env vars, and files where Flyte mounts them;
the run store's Secret as ``envFrom`` (every key an env var, e.g. ``AWS_ACCESS_KEY_ID``).

Only references are written: a secret's value is never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flyray.config.secrets import Secret

__all__ = ["add_env_from_secret", "add_secret_env", "add_secret_files"]


def add_env_from_secret(container: dict[str, Any], name: str | None) -> None:
    """Every key of Secret ``name`` as an env var of ``container`` (``envFrom: secretRef``).

    Kubernetes applies ``envFrom`` before ``env``, so the container's own variables win.
    """
    if name is None:
        return
    sources = container.setdefault("envFrom", [])
    ref = {"secretRef": {"name": name}}
    if ref not in sources:
        sources.append(ref)


def add_secret_env(container: dict[str, Any], secrets: Sequence[Secret]) -> None:
    """Secrets as ``secretKeyRef`` env vars; a variable the container already sets is kept."""
    env = container.setdefault("env", [])
    taken = {entry.get("name") for entry in env}
    env.extend(s.env_entry() for s in secrets if s.env_var and s.env_var not in taken)
    if not env:
        del container["env"]


def add_secret_files(pod_spec: dict[str, Any], secrets: Sequence[Secret]) -> None:
    """Secrets with ``mount`` as read-only files at Flyte's path in the pod's first container."""
    mounted = [s for s in secrets if s.mount_path is not None]
    if not mounted:
        return
    container = pod_spec["containers"][0]
    volumes = pod_spec.setdefault("volumes", [])
    mounts = container.setdefault("volumeMounts", [])
    for secret in mounted:
        name = secret.volume_name()
        volumes.append(
            {
                "name": name,
                "secret": {
                    "secretName": secret.secret_name,
                    "items": [{"key": secret.key, "path": secret.key}],
                },
            }
        )
        mounts.append(
            {"name": name, "mountPath": secret.mount_path, "subPath": secret.key, "readOnly": True}
        )
