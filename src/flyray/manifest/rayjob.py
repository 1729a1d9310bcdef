"""The KubeRay ``RayJob`` of a Ray task: one pure function from task to manifest.

``render_rayjob`` reads the task's ``custom_config()`` and adds what a run needs: the name,
labels, entrypoint, merged runtime env, deadline, retries, Ray version and image. No I/O,
no clock, no randomness: the same input always gives the same dict, and ``dump_yaml`` the
same bytes. Every ``None`` is dropped and every mapping's keys are sorted.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import inspect
import json
import math
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flyray.config.names import dns1123_name
from flyray.config.secrets import Secret
from flyray.config.settings import DEFAULT_KUBERAY_VERSION
from flyray.errors import ConfigError, ManifestError
from flyray.task.base import FunctionTask

__all__ = [
    "LATEST_KUBERAY_VERSION",
    "MANAGED_BY",
    "MAX_RUN_ID_LENGTH",
    "add_secret_files",
    "check_run_id",
    "clean",
    "dump_json",
    "dump_yaml",
    "rayjob_name",
    "refuse_existing_cluster",
    "render_rayjob",
    "run_metadata",
    "task_label",
]

LATEST_KUBERAY_VERSION = DEFAULT_KUBERAY_VERSION

API_VERSION = "ray.io/v1"
KIND = "RayJob"
MAX_NAME_LENGTH = 47  # the operator's limit for a RayJob name (RayCluster: 53)
DASHBOARD_PORT = 8265
MANAGED_BY = "flyray"

# The first KubeRay release that reads each field; older operators drop them silently.
_SINCE_RAY_IO_V1 = (1, 0, 0)
_SINCE_RUNTIME_ENV_YAML = (1, 1, 0)  # and the base64 ``runtimeEnv`` is gone from then on
_SINCE_ACTIVE_DEADLINE = (1, 1, 0)
_SINCE_BACKOFF_LIMIT = (1, 2, 0)
_SINCE_PRE_RUNNING_DEADLINE = (1, 6, 0)
_SINCE_AUTH_OPTIONS = (1, 6, 0)  # rayClusterSpec.authOptions: Ray token authentication
_RAY_TOKEN_AUTH = (2, 52, 0)  # the first Ray with token authentication (KubeRay checks it)

_HASH_LENGTH = 8
_MIN_LABEL_LENGTH = 14  # room for "e-t-" and a hash
MAX_RUN_ID_LENGTH = MAX_NAME_LENGTH - 1 - _MIN_LABEL_LENGTH
_RUN_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+.].*)?$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def rayjob_name(task: FunctionTask, run_id: str) -> str:
    """``<env>-<task>-<run id>``: a DNS-1035 label of at most 47 characters.

    The run id is always kept whole, so names of different runs never collide; long names
    keep the start of both the environment's and the task's name plus a hash of the full one.
    """
    run_id = check_run_id(run_id)
    return f"{task_label(task, max_length=MAX_NAME_LENGTH - len(run_id) - 1)}-{run_id}"


def task_label(task: FunctionTask, *, max_length: int = 63) -> str:
    """``<env>-<task>`` as a DNS-1123 label; cut to ``max_length`` with a hash when longer.

    It starts with a letter (an ``e`` goes before an environment name that starts with a
    digit), so the label is a DNS-1035 label too.
    """
    if max_length < _MIN_LABEL_LENGTH:
        raise ConfigError("max_length", max_length, f"must be >= {_MIN_LABEL_LENGTH}")
    env, short = dns1123_name(task.env.name, max_length=253), dns1123_name(task.short_name)
    if not env[0].isalpha():  # Flyte allows "2d_env"; a DNS-1035 label starts with a letter
        env = f"e{env}"
    label = f"{env}-{short}"
    if len(label) <= max_length:
        return label
    room = max_length - len("--") - _HASH_LENGTH
    env_part = env[: max(room - len(short), room // 2)].rstrip("-")
    short_part = short[: room - len(env_part)].rstrip("-")
    digest = hashlib.sha256(task.name.encode()).hexdigest()[:_HASH_LENGTH]
    return f"{env_part}-{short_part}-{digest}"


def render_rayjob(
    task: FunctionTask,
    *,
    run_id: str,
    entrypoint: Sequence[str],
    image: str,
    working_dir: str | None = None,
    env_vars: Mapping[str, str] | None = None,
    namespace: str | None = None,
    kuberay_version: str = LATEST_KUBERAY_VERSION,
    ray_version: str,
    mode: str = "kuberay",
) -> dict[str, Any]:
    """A complete ``ray.io/v1`` ``RayJob`` that runs ``entrypoint`` on the task's cluster.

    ``image`` goes on every Ray container that names none; ``working_dir`` and ``env_vars``
    join the task's runtime env (later sources win). ``kuberay_version`` picks the dialect;
    ``mode`` (the one the RayJob is for) decides what the environment's ``Image`` may ask.
    """
    version = _target_version(kuberay_version)
    config = _custom_config(task)
    cluster = _cluster_spec(
        config["rayClusterSpec"],
        image=_check_text("image", image),
        ray_version=ray_version,
        secrets=task.env.secrets,
    )
    cluster.update(_auth_fields(version, ray_version))
    spec: dict[str, Any] = {
        "entrypoint": _entrypoint(entrypoint),
        "rayClusterSpec": cluster,
        "submitterPodTemplate": _submitter_template(cluster, task.env.secrets),
        "shutdownAfterJobFinishes": config.get("shutdownAfterJobFinishes"),
        "ttlSecondsAfterFinished": config.get("ttlSecondsAfterFinished"),
        **_runtime_env_fields(
            _runtime_env(task, working_dir=working_dir, env_vars=env_vars, mode=mode), version
        ),
        **_deadline_fields(task, version, kuberay_version),
        **_pre_running_fields(config, task, version, kuberay_version),
        **_retry_fields(task, version, kuberay_version),
    }
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": run_metadata(task, run_id=run_id, namespace=namespace),
        "spec": spec,
    }
    return clean(manifest)


def dump_yaml(manifest: Mapping[str, Any]) -> str:
    """Block-style YAML in the manifest's own key order; multi-line strings as ``|`` blocks."""
    return _dump(manifest, _dumper())


def dump_json(manifest: Mapping[str, Any]) -> str:
    """JSON with a two-space indent, in the manifest's own key order."""
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


# --- the task's cluster -----------------------------------------------------------------


def refuse_existing_cluster(task: FunctionTask) -> None:
    """A task whose config names someone else's cluster has no cluster to create."""
    address = getattr(task.plugin_config, "address", None)
    if address is not None:
        raise ManifestError(
            f"task {task.name!r} uses the existing Ray cluster at {address!r} "
            "(RayJobConfig.address), so there is no cluster to create: run it in local mode "
            "(Ray Client) or cluster mode (Jobs API) to use that cluster, or drop address= to "
            "give the task a cluster of its own"
        )


def _custom_config(task: FunctionTask) -> dict[str, Any]:
    """The task's ``custom_config()`` (a copy); a task with no cluster to create is an error."""
    config = task.custom_config()
    if config is None:
        raise ManifestError(
            f"task {task.name!r} is not a Ray task, so it has no RayJob: give its environment "
            f"{task.env.name!r} plugin_config=RayJobConfig(...) to run it on KubeRay"
        )
    refuse_existing_cluster(task)
    return clean(config)


def _cluster_spec(
    cluster: dict[str, Any], *, image: str, ray_version: str, secrets: Sequence[Secret]
) -> dict[str, Any]:
    """``rayClusterSpec`` with the Ray version, image, secrets on every Ray container, ports."""
    cluster["rayVersion"] = _check_text("ray_version", ray_version)
    head = cluster["headGroupSpec"]
    for group in [head, *cluster.get("workerGroupSpecs", [])]:
        ray_container = _ray_container(group)
        if not ray_container.get("image"):
            ray_container["image"] = image
        _add_secret_env(ray_container, secrets)
        add_secret_files(group["template"]["spec"], secrets)
        if not ray_container.get("ports"):
            ray_container.pop("ports", None)  # KubeRay then uses its default ports
    _ensure_dashboard_port(head)
    return cluster


def _auth_fields(version: tuple[int, ...], ray_version: str) -> dict[str, Any]:
    """Ray token authentication, where KubeRay and Ray both have it.

    KubeRay then makes a Secret with a random token (named after the RayCluster, key
    ``auth_token``) and gives ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` to every Ray
    container and the submitter, and uses the token itself. Without it, ``ray start`` in a pod
    leaves the cluster open to anyone who reaches its ports, whatever Ray's default elsewhere.
    """
    ray = _VERSION.match(ray_version)
    if version < _SINCE_AUTH_OPTIONS or ray is None:
        return {}
    if tuple(int(part or 0) for part in ray.groups()) < _RAY_TOKEN_AUTH:
        return {}
    return {"authOptions": {"mode": "token"}}


def _add_secret_env(container: dict[str, Any], secrets: Sequence[Secret]) -> None:
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


def _submitter_template(cluster: dict[str, Any], secrets: Sequence[Secret]) -> dict | None:
    """With secrets, KubeRay's default submitter pod plus them; else None (the default).

    KubeRay fills in the submitter's command when the template gives none.
    """
    if not secrets:
        return None
    container = {
        "name": "ray-job-submitter",
        "image": _ray_container(cluster["headGroupSpec"])["image"],
        "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"},
            "requests": {"cpu": "500m", "memory": "200Mi"},
        },
    }
    _add_secret_env(container, secrets)
    spec = {"restartPolicy": "Never", "containers": [container]}
    add_secret_files(spec, secrets)
    return {"spec": spec}


def _ray_container(group: dict[str, Any]) -> dict[str, Any]:
    """KubeRay finds the Ray container by index: it is always ``containers[0]``."""
    return group["template"]["spec"]["containers"][0]


def _ensure_dashboard_port(head: dict[str, Any]) -> None:
    """A head that lists ports needs one named ``dashboard``, or the job is never submitted."""
    container = _ray_container(head)
    ports = container.get("ports")
    if not ports or any(port.get("name") == "dashboard" for port in ports):
        return
    number = _dashboard_port_number(head)
    same = next((port for port in ports if port.get("containerPort") == number), None)
    if same is None:
        ports.append({"containerPort": number, "name": "dashboard"})
    elif same.get("name") is None:
        same["name"] = "dashboard"
    else:
        raise ManifestError(
            f"head container {container['name']!r} lists port {number} named "
            f"{same['name']!r}; KubeRay finds the Ray dashboard by the port name 'dashboard': "
            "rename that port to 'dashboard' or leave ports out of the head's pod template"
        )


def _dashboard_port_number(head: dict[str, Any]) -> int:
    value = head.get("rayStartParams", {}).get("dashboard-port", DASHBOARD_PORT)
    try:
        return int(value)
    except ValueError:
        raise ManifestError(
            f"head rayStartParams['dashboard-port'] is {value!r}; it must be a port number"
        ) from None


# --- job fields -------------------------------------------------------------------------


def run_metadata(task: FunctionTask, *, run_id: str, namespace: str | None) -> dict[str, Any]:
    """Name, namespace, labels to find the run's objects by, and the task's full name."""
    return {
        "name": rayjob_name(task, run_id),
        "namespace": _check_namespace(namespace),
        "labels": {
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "flyray.io/run-id": run_id,
            "flyray.io/task": task_label(task),
        },
        "annotations": {"flyray.io/task-name": task.name},
    }


def _entrypoint(argv: Sequence[str]) -> str:
    """One command, each argument quoted: the operator pastes it unquoted into a bash line."""
    if isinstance(argv, str) or not isinstance(argv, Sequence):
        raise ConfigError("entrypoint", argv, "must be a list of arguments, not one string")
    if not argv or not all(isinstance(arg, str) for arg in argv):
        raise ConfigError("entrypoint", argv, "must be a non-empty list of strings")
    return shlex.join(argv)


def _deadline_fields(
    task: FunctionTask, version: tuple[int, ...], kuberay_version: str
) -> dict[str, Any]:
    """``activeDeadlineSeconds``: the task's timeout, rounded up to whole seconds."""
    if task.timeout is None:
        return {}
    if version < _SINCE_ACTIVE_DEADLINE:
        raise ManifestError(
            f"task {task.name!r} has timeout={task.timeout:g}s, but KubeRay {kuberay_version} "
            "has no activeDeadlineSeconds (added in 1.1.0): target a newer KubeRay or drop the "
            "timeout"
        )
    return {"activeDeadlineSeconds": math.ceil(task.timeout)}


def _pre_running_fields(
    config: dict[str, Any], task: FunctionTask, version: tuple[int, ...], kuberay_version: str
) -> dict[str, Any]:
    """``preRunningDeadlineSeconds``: how long the cluster may take to get the job running."""
    seconds = config.get("preRunningDeadlineSeconds")
    if seconds is None:
        return {}
    if version < _SINCE_PRE_RUNNING_DEADLINE:
        raise ManifestError(
            f"task {task.name!r} has pre_running_deadline_seconds={seconds}, but KubeRay "
            f"{kuberay_version} has no preRunningDeadlineSeconds (added in 1.6.0): target a "
            "newer KubeRay or drop pre_running_deadline_seconds"
        )
    return {"preRunningDeadlineSeconds": seconds}


def _retry_fields(
    task: FunctionTask, version: tuple[int, ...], kuberay_version: str
) -> dict[str, Any]:
    """``backoffLimit``: the task's retries, each on a new RayCluster."""
    if version >= _SINCE_BACKOFF_LIMIT:
        return {"backoffLimit": task.retries}
    if task.retries:
        raise ManifestError(
            f"task {task.name!r} has retries={task.retries}, but KubeRay {kuberay_version} "
            "cannot retry a RayJob (backoffLimit was added in 1.2.0): target a newer KubeRay "
            "or set retries=0"
        )
    return {}


# --- runtime env ------------------------------------------------------------------------


def _runtime_env(
    task: FunctionTask,
    *,
    working_dir: str | None,
    env_vars: Mapping[str, str] | None,
    mode: str,
) -> dict[str, Any]:
    """The config's runtime_env plus ``working_dir``, the Image's parts and env vars.

    Env vars: the Image's, the config's, the TaskEnvironment's, then ``env_vars``; later
    ones win. The Image's packages come before the config's ``pip`` (``image_env``).
    """
    from flyray.manifest.image_env import image_runtime_env, merge_image_env

    where = f"TaskEnvironment {task.env.name!r}"
    image_env = image_runtime_env(
        task.env.image, mode=mode, where=where, task_file=_task_file(task)
    )
    env = copy.deepcopy(getattr(task.plugin_config, "runtime_env", None) or {})
    env = merge_image_env(env, image_env, where=where)
    if working_dir is not None:
        env["working_dir"] = _check_text("working_dir", working_dir)
    merged = {
        **env.get("env_vars", {}),
        **(task.env.env_vars or {}),
        **_check_env_vars(env_vars),
    }
    if merged:
        env["env_vars"] = merged
    return env


def _task_file(task: FunctionTask) -> Path | None:
    """The file that defines the task: its project is what the code bundle ships."""
    try:
        return Path(inspect.getfile(task.func))
    except TypeError:  # a builtin or a callable without a source file
        return None


def _runtime_env_fields(env: dict[str, Any], version: tuple[int, ...]) -> dict[str, str]:
    """``runtimeEnvYAML`` (KubeRay >= 1.1.0) or the older base64 JSON ``runtimeEnv``."""
    if not env:
        return {}
    if version >= _SINCE_RUNTIME_ENV_YAML:
        return {"runtimeEnvYAML": _runtime_env_yaml(env)}
    text = json.dumps(env, sort_keys=True, separators=(",", ":"))
    return {"runtimeEnv": base64.b64encode(text.encode()).decode()}


def _runtime_env_yaml(env: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(env, sort_keys=True, default_flow_style=False, allow_unicode=True)


# --- argument checks --------------------------------------------------------------------


def _target_version(kuberay_version: str) -> tuple[int, ...]:
    """``"1.10.0"`` -> ``(1, 10, 0)``, so versions compare as numbers, not as text."""
    match = _VERSION.match(kuberay_version) if isinstance(kuberay_version, str) else None
    if match is None:
        raise ConfigError("kuberay_version", kuberay_version, "must be a version such as '1.7.0'")
    version = tuple(int(part or 0) for part in match.groups())
    if version < _SINCE_RAY_IO_V1:
        raise ManifestError(
            f"KubeRay {kuberay_version} does not serve ray.io/v1 RayJobs (added in 1.0.0): "
            "upgrade the operator"
        )
    return version


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


# --- output -----------------------------------------------------------------------------


def clean(value: Any) -> Any:
    """A copy without ``None`` values, every mapping's keys sorted: one input, one output."""
    if isinstance(value, Mapping):
        return {key: clean(value[key]) for key in sorted(value) if value[key] is not None}
    if isinstance(value, (list, tuple)):
        return [clean(item) for item in value if item is not None]
    return value


def _dump(manifest: Mapping[str, Any], dumper: Any) -> str:
    import yaml

    return yaml.dump(
        manifest,
        Dumper=dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )


@functools.cache
def _dumper() -> Any:
    """A safe dumper without anchors or aliases that writes multi-line strings as blocks.

    libyaml's emitter when PyYAML has it (about 5x faster), else the pure-Python one; both
    write the same bytes for manifests (tests/manifest checks it on every golden file).
    """
    import yaml

    return _safe_dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper))


def _safe_dumper(base: Any) -> Any:
    class Dumper(base):  # type: ignore[misc, valid-type]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def represent_str(dumper: Any, data: str) -> Any:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, represent_str)
    return Dumper
