"""The names and metadata of a run's objects: DNS labels that fit, found again by their labels.

A RayJob is ``<env>-<task>-<run id>`` in at most 47 characters (the operator's limit); the run
id is always kept whole, so the names of different runs never collide.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flyray.config.names import dns1123_name
from flyray.errors import ConfigError
from flyray.manifest.labels import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    RUN_ID_LABEL,
    TASK_LABEL,
    TASK_NAME_ANNOTATION,
)
from flyray.manifest.request import RayJobRequest

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_RUN_ID_LENGTH",
    "check_run_id",
    "rayjob_name",
    "run_metadata",
    "task_label",
]

MAX_NAME_LENGTH = 47  # the operator's limit for a RayJob name (RayCluster: 53)
_HASH_LENGTH = 8
_MIN_LABEL_LENGTH = 14  # room for "e-t-" and a hash
MAX_RUN_ID_LENGTH = MAX_NAME_LENGTH - 1 - _MIN_LABEL_LENGTH
_RUN_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def rayjob_name(request: RayJobRequest, run_id: str) -> str:
    """``<env>-<task>-<run id>``: a DNS-1035 label of at most 47 characters.

    The run id is always kept whole, so names of different runs never collide; long names
    keep the start of both the environment's and the task's name plus a hash of the full one.
    """
    run_id = check_run_id(run_id)
    return f"{task_label(request, max_length=MAX_NAME_LENGTH - len(run_id) - 1)}-{run_id}"


def task_label(request: RayJobRequest, *, max_length: int = 63) -> str:
    """``<env>-<task>`` as a DNS-1123 label; cut to ``max_length`` with a hash when longer.

    It starts with a letter (an ``e`` goes before an environment name that starts with a
    digit), so the label is a DNS-1035 label too.
    """
    if max_length < _MIN_LABEL_LENGTH:
        raise ConfigError("max_length", max_length, f"must be >= {_MIN_LABEL_LENGTH}")
    env = dns1123_name(request.env_name, max_length=253)
    short = dns1123_name(request.short_name)
    if not env[0].isalpha():  # Flyte allows "2d_env"; a DNS-1035 label starts with a letter
        env = f"e{env}"
    label = f"{env}-{short}"
    if len(label) <= max_length:
        return label
    room = max_length - len("--") - _HASH_LENGTH
    env_part = env[: max(room - len(short), room // 2)].rstrip("-")
    short_part = short[: room - len(env_part)].rstrip("-")
    digest = hashlib.sha256(request.task_name.encode()).hexdigest()[:_HASH_LENGTH]
    return f"{env_part}-{short_part}-{digest}"


def run_metadata(request: RayJobRequest, *, run_id: str, namespace: str | None) -> dict[str, Any]:
    """Name, namespace, labels to find the run's objects by, and the task's full name."""
    return {
        "name": rayjob_name(request, run_id),
        "namespace": _check_namespace(namespace),
        "labels": {
            MANAGED_BY_LABEL: MANAGED_BY,
            RUN_ID_LABEL: run_id,
            TASK_LABEL: task_label(request),
        },
        "annotations": {TASK_NAME_ANNOTATION: request.task_name},
    }


def check_run_id(run_id: object) -> str:
    """A run id that fits in every name flyray makes from it, else ConfigError."""
    if not isinstance(run_id, str) or len(run_id) > MAX_RUN_ID_LENGTH or not _RUN_ID.match(run_id):
        raise ConfigError(
            "run_id",
            run_id,
            f"must be at most {MAX_RUN_ID_LENGTH} lowercase letters, digits or '-', starting "
            "and ending with a letter or digit, such as 'r0a1b2c3d4e'",
        )
    return run_id


def _check_namespace(namespace: object) -> str | None:
    if namespace is None:
        return None
    if not isinstance(namespace, str) or len(namespace) > 63 or not _RUN_ID.match(namespace):
        raise ConfigError(
            "namespace", namespace, "must be a DNS-1123 label: at most 63 characters, [a-z0-9-]"
        )
    return namespace
