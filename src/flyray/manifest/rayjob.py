"""The KubeRay ``RayJob`` of a Ray task: one pure function from request to manifest.

``render_rayjob`` reads the task's ``RayJobRequest`` and adds what a run needs: the name,
labels, entrypoint, merged runtime env, deadline, retries, Ray version and image. No I/O,
no clock, no randomness: the same input always gives the same dict, and ``dump_yaml`` the
same bytes. Every ``None`` is dropped and every mapping's keys are sorted.
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from flyray.config.secrets import Secret
from flyray.errors import ConfigError, ManifestError
from flyray.manifest.kuberay import (
    API_VERSION,
    LATEST_KUBERAY_VERSION,
    auth_fields,
    deadline_fields,
    ensure_dashboard_port,
    pre_running_fields,
    ray_cluster_spec,
    ray_container,
    retry_fields,
    runtime_env_fields,
    target_version,
)
from flyray.manifest.names import run_metadata
from flyray.manifest.request import RayJobRequest
from flyray.manifest.secrets import add_env_from_secret, add_secret_env, add_secret_files
from flyray.manifest.serialization import clean

__all__ = ["ENV_SETUP_TRIES", "INSTALLERS", "refuse_existing_cluster", "render_rayjob"]

KIND = "RayJob"
INSTALLERS = ("pip", "uv", "conda")  # runtime env keys that install packages on every node
# Ray tries a runtime env 3 times by default, which triples the wait for a failed install: the
# Ray nodes flyray starts (local, local-cluster) or renders (kuberay) try once unless told to.
ENV_SETUP_TRIES = ("RUNTIME_ENV_RETRY_TIMES", "1")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def render_rayjob(
    request: RayJobRequest,
    *,
    run_id: str,
    entrypoint: Sequence[str],
    image: str,
    working_dir: str | None = None,
    py_modules: Sequence[str] | None = None,
    env_vars: Mapping[str, str] | None = None,
    namespace: str | None = None,
    kuberay_version: str = LATEST_KUBERAY_VERSION,
    ray_version: str,
    mode: str = "kuberay",
    store_secret: str | None = None,
) -> dict[str, Any]:
    """A complete ``ray.io/v1`` ``RayJob`` that runs ``entrypoint`` on the task's cluster.

    ``image`` goes on every Ray container that names none; ``working_dir`` and ``env_vars``
    join the task's runtime env (later sources win); ``py_modules``, when given, replaces the
    runtime env's list (the executor's: flyray's site bundle, then the user's as URIs).
    ``kuberay_version`` picks the dialect; ``mode`` (the one the RayJob is for) decides what
    the environment's ``Image`` may ask.
    ``store_secret``: a Secret every Ray container and the submitter get as ``envFrom``.
    """
    version = target_version(kuberay_version)
    refuse_existing_cluster(request)
    cluster = _cluster_spec(
        clean(ray_cluster_spec(request.cluster)),
        image=_check_text("image", image),
        ray_version=ray_version,
        secrets=request.secrets,
        store_secret=store_secret,
    )
    cluster.update(auth_fields(version, ray_version))
    env = _runtime_env(
        request, working_dir=working_dir, py_modules=py_modules, env_vars=env_vars, mode=mode
    )
    if any(env.get(key) for key in INSTALLERS):
        _try_env_setup_once(cluster)
    spec: dict[str, Any] = {
        "entrypoint": _entrypoint(entrypoint),
        "rayClusterSpec": cluster,
        "submitterPodTemplate": _submitter_template(cluster, request.secrets, store_secret),
        "shutdownAfterJobFinishes": request.shutdown_after_job_finishes,
        "ttlSecondsAfterFinished": request.ttl_seconds_after_finished,
        **runtime_env_fields(env, version),
        **deadline_fields(request, version, kuberay_version),
        **pre_running_fields(request, version, kuberay_version),
        **retry_fields(request, version, kuberay_version),
    }
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": run_metadata(request, run_id=run_id, namespace=namespace),
        "spec": spec,
    }
    return clean(manifest)


def refuse_existing_cluster(request: RayJobRequest) -> None:
    """A task whose config names someone else's cluster has no cluster to create."""
    if request.address is not None:
        raise ManifestError(
            f"task {request.task_name!r} uses the existing Ray cluster at {request.address!r} "
            "(RayJobConfig.address), so there is no cluster to create: run it in local mode "
            "(Ray Client) or cluster mode (Jobs API) to use that cluster, or drop address= to "
            "give the task a cluster of its own"
        )


# --- the task's cluster -----------------------------------------------------------------


def _cluster_spec(
    cluster: dict[str, Any],
    *,
    image: str,
    ray_version: str,
    secrets: Sequence[Secret],
    store_secret: str | None,
) -> dict[str, Any]:
    """``rayClusterSpec`` with the Ray version, image, secrets on every Ray container, ports."""
    cluster["rayVersion"] = _check_text("ray_version", ray_version)
    head = cluster["headGroupSpec"]
    for group in [head, *cluster.get("workerGroupSpecs", [])]:
        container = ray_container(group)
        if not container.get("image"):
            container["image"] = image
        add_secret_env(container, secrets)
        add_env_from_secret(container, store_secret)
        add_secret_files(group["template"]["spec"], secrets)
        if not container.get("ports"):
            container.pop("ports", None)  # KubeRay then uses its default ports
    ensure_dashboard_port(head)
    return cluster


def _try_env_setup_once(cluster: dict[str, Any]) -> None:
    """``RUNTIME_ENV_RETRY_TIMES=1`` on every Ray container that does not set it: a failed
    ``pip`` install then fails the job after one try, with pip's words, not after three."""
    name, value = ENV_SETUP_TRIES
    for group in [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]:
        env = ray_container(group).setdefault("env", [])
        if all(entry.get("name") != name for entry in env):
            env.append({"name": name, "value": value})


def _submitter_template(
    cluster: dict[str, Any], secrets: Sequence[Secret], store_secret: str | None
) -> dict | None:
    """With secrets or a store Secret, KubeRay's default submitter pod plus them; else None.

    KubeRay fills in the submitter's command when the template gives none.
    """
    if not secrets and store_secret is None:
        return None
    container = {
        "name": "ray-job-submitter",
        "image": ray_container(cluster["headGroupSpec"])["image"],
        "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"},
            "requests": {"cpu": "500m", "memory": "200Mi"},
        },
    }
    add_secret_env(container, secrets)
    add_env_from_secret(container, store_secret)
    spec = {"restartPolicy": "Never", "containers": [container]}
    add_secret_files(spec, secrets)
    return {"spec": spec}


# --- job fields -------------------------------------------------------------------------


def _entrypoint(argv: Sequence[str]) -> str:
    """One command, each argument quoted: the operator pastes it unquoted into a bash line."""
    if isinstance(argv, str) or not isinstance(argv, Sequence):
        raise ConfigError("entrypoint", argv, "must be a list of arguments, not one string")
    if not argv or not all(isinstance(arg, str) for arg in argv):
        raise ConfigError("entrypoint", argv, "must be a non-empty list of strings")
    return shlex.join(argv)


def _runtime_env(
    request: RayJobRequest,
    *,
    working_dir: str | None,
    py_modules: Sequence[str] | None,
    env_vars: Mapping[str, str] | None,
    mode: str,
) -> dict[str, Any]:
    """The config's runtime_env plus ``working_dir``, the Image's parts and env vars.

    Env vars: the Image's, the config's, the TaskEnvironment's, then ``env_vars``; later
    ones win. The Image's packages come before the config's ``pip`` (``image_env``).
    """
    from flyray.manifest.image_env import image_runtime_env, merge_image_env

    where = f"TaskEnvironment {request.env_name!r}"
    image_env = image_runtime_env(
        request.image, mode=mode, where=where, task_file=request.task_file
    )
    env = merge_image_env(copy.deepcopy(request.runtime_env), image_env, where=where)
    if working_dir is not None:
        env["working_dir"] = _check_text("working_dir", working_dir)
    if py_modules is not None:
        env["py_modules"] = [_check_text("py_modules[]", uri) for uri in py_modules]
    merged = {
        **env.get("env_vars", {}),
        **request.env_vars,
        **_check_env_vars(env_vars),
    }
    if merged:
        env["env_vars"] = merged
    return env


# --- argument checks --------------------------------------------------------------------


def _check_text(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, value, "must be a non-empty string")
    return value


def _check_env_vars(env_vars: object) -> dict[str, str]:
    if env_vars is None:
        return {}
    if not isinstance(env_vars, Mapping):
        raise ConfigError("env_vars", env_vars, "must be a mapping of str to str")
    for key, value in env_vars.items():
        if not isinstance(key, str) or not _ENV_VAR.match(key):
            raise ConfigError(f"env_vars[{key!r}]", key, "must be a valid variable name")
        if not isinstance(value, str):
            raise ConfigError(f"env_vars[{key!r}]", value, "must be a string")
    return dict(env_vars)
