"""Whether a run's cluster is a warm cluster's: the manifests' cluster parts, field by field.

The key is what makes the cluster: ``rayClusterSpec`` (groups, replicas, resources,
rayStartParams, images, Ray version) and the runtime env. Left out is what every run changes
or only concerns one job: the bundle URI (``working_dir``), the entrypoint, names, labels,
deadline, retries and the TTL. Otherwise every code change would miss the warm cluster.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["cluster_key", "differences", "explain"]

_PER_RUN_RUNTIME_ENV = ("working_dir",)  # the run's code bundle: a new URI for every change
_ABSENT = object()
_MAX_SHOWN = 60  # characters of a list or object shown whole


def cluster_key(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The cluster part of a RayJob: ``rayClusterSpec`` plus ``runtimeEnv`` without per-run keys."""
    spec = manifest["spec"]
    key = copy.deepcopy(dict(spec["rayClusterSpec"]))
    runtime_env = _runtime_env(spec)
    for name in _PER_RUN_RUNTIME_ENV:
        runtime_env.pop(name, None)
    if runtime_env:
        key["runtimeEnv"] = runtime_env
    return key


def differences(warm: Any, run: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(field path, warm value, run value) for every difference; absent values are ``None``."""
    if isinstance(warm, Mapping) and isinstance(run, Mapping):
        found = []
        for name in sorted(set(warm) | set(run)):
            sub = f"{path}.{name}" if path else str(name)
            found += differences(warm.get(name, _ABSENT), run.get(name, _ABSENT), sub)
        return found
    if isinstance(warm, list) and isinstance(run, list) and len(warm) == len(run):
        found = []
        for index, (left, right) in enumerate(zip(warm, run, strict=True)):
            found += differences(left, right, f"{path}[{index}]")
        return found
    if warm == run:
        return []
    return [(path, None if warm is _ABSENT else warm, None if run is _ABSENT else run)]


def explain(name: str, warm: Mapping[str, Any], run: Mapping[str, Any], *, limit: int = 3) -> str:
    """``workerGroupSpecs[0].replicas: 2 (warm cluster 'ray-env') != 3 (this run)``, and so on."""
    found = differences(warm, run)
    parts = [
        f"{path}: {_show(left)} (warm cluster {name!r}) != {_show(right)} (this run)"
        for path, left, right in found[:limit]
    ]
    more = len(found) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _runtime_env(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The runtime env from ``runtimeEnvYAML``, or the base64 JSON ``runtimeEnv`` of old KubeRay."""
    if spec.get("runtimeEnvYAML"):
        import yaml

        return dict(yaml.safe_load(spec["runtimeEnvYAML"]) or {})
    if spec.get("runtimeEnv"):
        return dict(json.loads(base64.b64decode(spec["runtimeEnv"])))
    return {}


def _show(value: Any) -> str:
    """A value as JSON (long lists and objects by their size), or ``<absent>``."""
    if value is None:
        return "<absent>"
    text = json.dumps(value, sort_keys=True)
    if len(text) <= _MAX_SHOWN or not isinstance(value, (list, dict)):
        return text
    return f"[{len(value)} items]" if isinstance(value, list) else f"{{{len(value)} keys}}"
