"""A task's Ray ``runtime_env``, checked as Ray 2.60 checks it, without importing Ray.

Two steps, because Ray itself checks in two places:

- ``check_runtime_env`` (when a ``RayJobConfig`` is made): the shape of every field Ray knows,
  after ``ray/_private/runtime_env/validation.py`` and ``ray.runtime_env.RuntimeEnv``. Nothing
  is read from disk here: the task module is imported again inside the cluster, where the
  caller's files are not.
- ``resolve_runtime_env`` (when a run is submitted or ``ray.init`` is called, where Ray reads
  files): the shape again, then the files. A ``pip``/``uv`` requirements file (or ``pip``'s
  ``packages`` file) is read into its lines, as Ray's ``_handle_local_deps_requirement_file``
  does, so the manifest carries the packages and a pod needs no file; a conda ``.yaml`` is
  read into its dict; local ``working_dir`` and ``py_modules`` paths must exist (relative
  paths are relative to the current directory, as for Ray).

Every error is a ``ConfigError`` naming the field (``runtime_env['pip']['pip_check']``), the
value and the rule. Keys Ray does not know are accepted and warned about: Ray's runtime env
agent ignores them with a warning (plugins may claim them). Where flyray is stricter than Ray
(``pip`` packages that are not strings, ``env_vars`` that is an empty list), the table test
in ``tests/plugins/test_runtime_env.py`` names the case.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from flyray.errors import ConfigError

__all__ = [
    "KNOWN_FIELDS",
    "bundle_root",
    "check_runtime_env",
    "is_remote_uri",
    "resolve_runtime_env",
]

KNOWN_FIELDS = frozenset(
    {
        "py_modules",
        "py_executable",
        "java_jars",
        "working_dir",
        "conda",
        "pip",
        "uv",
        "container",
        "excludes",
        "env_vars",
        "_ray_release",
        "_ray_commit",
        "_inject_current_ray",
        "config",
        "worker_process_setup_hook",
        "_nsight",
        "_rocprof_sys",
        "image_uri",
    }
)  # ray.runtime_env.RuntimeEnv.known_fields in Ray 2.60
_PIP_KEYS = ("packages", "pip_check", "pip_install_options", "pip_version")
_UV_KEYS = ("packages", "uv_check", "uv_version", "uv_pip_install_options")
_PROTOCOLS = ("gcs", "conda", "pip", "uv", "http", "https", "s3", "gs", "azure", "abfss", "file")
_REMOTE = ("gcs", "http", "https", "s3", "gs", "azure", "abfss", "file")
_ARCHIVES = {
    "working_dir": (".zip", ".tar.gz", ".tgz", ".tar.xz"),
    "py_modules": (".zip", ".whl", ".tar.gz", ".tgz", ".tar.xz"),
}


def check_runtime_env(runtime_env: object) -> None:
    """Refuse a runtime env Ray would refuse (its shape only; files are read later)."""
    _check(runtime_env, read_files=False)


def resolve_runtime_env(runtime_env: dict[str, Any] | None) -> dict[str, Any]:
    """``runtime_env`` checked with its files, requirements files read into package lists.

    For the place where Ray reads them: a run's submission (the manifest then carries the
    packages) or local mode's ``ray.init``. Returns a new dict; ``None`` gives ``{}``.
    """
    if runtime_env is None:
        return {}
    return _check(runtime_env, read_files=True)


def is_remote_uri(value: str) -> bool:
    """Whether a ``working_dir``/``py_modules`` entry is a URI rather than a local path."""
    return bool(urlparse(value).scheme)  # as Ray's is_path, on POSIX


def bundle_root(runtime_env: dict[str, Any], task_file: Path) -> Path | None:
    """The root of the task's code bundle that a ``working_dir`` asks for, else None.

    flyray's code bundle *is* the job's ``working_dir`` (a zip in the run store), so a user's
    local folder becomes the bundle's root (the task file must lie inside it) and a URI,
    which would replace the task's code on the cluster, is refused.
    """
    working_dir = runtime_env.get("working_dir")
    if working_dir is None:
        return None
    field = "runtime_env['working_dir']"
    if is_remote_uri(working_dir):
        raise ConfigError(
            field,
            working_dir,
            "must be a local folder outside local mode: flyray ships the task's code as the "
            "job's working_dir (a zip in the run store), so a URI there would replace it; "
            "put the files in the task's project, or fetch them from the URI in the task",
        )
    root = Path(working_dir).resolve()
    if not root.is_dir():
        raise ConfigError(field, working_dir, f"must be an existing folder ({root})")
    task = Path(task_file).resolve()
    if not task.is_relative_to(root):
        raise ConfigError(
            field,
            working_dir,
            f"must contain the task file {task}: the folder becomes the root of the code "
            "bundle the job runs in",
        )
    return root


# --- the whole dict -----------------------------------------------------------------------


def _check(runtime_env: object, *, read_files: bool) -> dict[str, Any]:
    if runtime_env is None:
        return {}
    if not isinstance(runtime_env, dict):
        raise ConfigError("runtime_env", runtime_env, "must be a dict (a Ray runtime_env)")
    try:
        json.dumps(runtime_env, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            "runtime_env", runtime_env, f"must be JSON-serialisable ({exc})"
        ) from None
    for key in runtime_env:
        if not isinstance(key, str):
            raise ConfigError("runtime_env", key, "keys must be strings (Ray's field names)")
    env = copy.deepcopy(runtime_env)
    installers = [key for key in ("pip", "uv", "conda") if env.get(key) is not None]
    if len(installers) > 1:
        raise ConfigError(
            "runtime_env",
            {key: env[key] for key in installers},
            f"cannot set {' and '.join(repr(k) for k in installers)} together: Ray installs "
            "with one of pip, uv or conda; with conda, list pip packages in the conda "
            "environment's own 'pip' section",
        )
    for key, value in list(env.items()):
        if value is None:
            continue
        check = _FIELDS.get(key)
        if check is not None:
            env[key] = check(f"runtime_env[{key!r}]", value, read_files)
        elif key not in KNOWN_FIELDS:
            _warn_unknown(key)
    return env


def _warn_unknown(key: str) -> None:
    from flyray.warn import FlyrayWarning

    warnings.warn(
        f"runtime_env[{key!r}] is not a field Ray knows: Ray passes it to a runtime env "
        "plugin of that name if the cluster has one, and otherwise ignores it with a warning",
        FlyrayWarning,
        stacklevel=5,
    )


# --- installers ---------------------------------------------------------------------------


def _pip(field: str, value: object, read_files: bool) -> object:
    """``pip``: a list of requirements, a requirements file, or Ray's dict."""
    return _installer(field, value, read_files, "pip", package_file=True)


def _uv(field: str, value: object, read_files: bool) -> object:
    """``uv``: as ``pip``, with uv's option names; its ``packages`` must be a list."""
    return _installer(field, value, read_files, "uv", package_file=False)


def _installer(
    field: str, value: object, read_files: bool, tool: str, *, package_file: bool
) -> object:
    """``pip`` or ``uv`` (Ray's shapes are the same but for the option names): a list of
    requirements, a requirements file, or a dict with ``packages`` and the tool's options."""
    check, version, options = (
        ("pip_check", "pip_version", "pip_install_options")
        if tool == "pip"
        else ("uv_check", "uv_version", "uv_pip_install_options")
    )
    if isinstance(value, str):
        return _requirements_file(field, value) if read_files else value
    if isinstance(value, list):
        return _strings(field, value, "must be a list of requirement strings")
    if not isinstance(value, dict):
        raise ConfigError(
            field,
            value,
            "must be a list of requirements, a requirements file path, or a dict with "
            f"'packages' (and optional '{check}', '{version}', '{options}')",
        )
    _dict_keys(field, value, _PIP_KEYS if tool == "pip" else _UV_KEYS)
    _optional(field, value, check, bool, "must be True or False")
    _optional(field, value, version, str, "must be a version specifier string")
    _options(field, value, options)
    packages = value["packages"]
    if isinstance(packages, str) and package_file:
        if read_files:
            value = {**value, "packages": _requirements_file(f"{field}['packages']", packages)}
    elif isinstance(packages, list):
        _strings(f"{field}['packages']", packages, "must be a list of requirement strings")
    else:
        rule = "must be a list of strings" + (" or a requirements file" if package_file else "")
        raise ConfigError(f"{field}['packages']", packages, rule)
    return value


def _conda(field: str, value: object, read_files: bool) -> object:
    """``conda``: an environment dict, a ``.yaml`` file, an env's name or absolute folder."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise ConfigError(
            field,
            value,
            "must be a dict (a conda environment), a .yaml file, or an existing "
            "environment's name or absolute path",
        )
    if not read_files:
        return value
    path = Path(value)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        text = _read(field, path, "conda environment file")
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(field, value, f"must be a valid YAML file ({exc})") from None
    if path.is_absolute() and not path.is_dir():
        raise ConfigError(field, value, "names no existing conda environment folder")
    return value


def _requirements_file(field: str, value: str) -> list[str]:
    """A requirements file's lines, read as Ray reads it (relative to the current directory)."""
    return _read(field, Path(value), "requirements file").strip().split("\n")


def _read(field: str, path: Path, what: str) -> str:
    if not path.is_file():
        raise ConfigError(
            field,
            str(path),
            f"must be an existing {what} (relative paths start in {Path.cwd()}, as for Ray)",
        )
    return path.read_text()


# --- the rest -----------------------------------------------------------------------------


def _env_vars(field: str, value: object, read_files: bool) -> object:
    if not isinstance(value, dict):
        raise ConfigError(field, value, "must be a dict of str to str")
    for key, item in value.items():
        if not isinstance(key, str):
            raise ConfigError(field, key, "keys must be strings")
        if not isinstance(item, str):
            raise ConfigError(f"{field}[{key!r}]", item, "must be a string")
    return value


def _working_dir(field: str, value: object, read_files: bool) -> object:
    if not isinstance(value, str):
        raise ConfigError(field, value, "must be a string: a local folder or a zip URI")
    _path_or_uri(field, value, "working_dir", read_files)
    return value


def _py_modules(field: str, value: object, read_files: bool) -> object:
    if not isinstance(value, list):
        raise ConfigError(field, value, "must be a list of local paths or URIs")
    for i, module in enumerate(value):
        if not isinstance(module, str):
            raise ConfigError(f"{field}[{i}]", module, "must be a string: a local path or URI")
        _path_or_uri(f"{field}[{i}]", module, "py_modules", read_files)
    return value


def _excludes(field: str, value: object, read_files: bool) -> object:
    if not isinstance(value, list):
        raise ConfigError(field, value, "must be a list of gitignore-style patterns")
    return _strings(field, value, "must be a list of gitignore-style patterns")


def _config(field: str, value: object, read_files: bool) -> object:
    if not isinstance(value, dict):
        raise ConfigError(field, value, "must be a dict (Ray's RuntimeEnvConfig)")
    timeout = value.get("setup_timeout_seconds")
    whole = isinstance(timeout, int) and not isinstance(timeout, bool)
    if timeout is not None and (not whole or (timeout <= 0 and timeout != -1)):
        raise ConfigError(
            f"{field}['setup_timeout_seconds']", timeout, "must be an int > 0, or -1 (no limit)"
        )
    _optional(field, value, "eager_install", bool, "must be True or False")
    log_files = value.get("log_files")
    if log_files is not None:
        if not isinstance(log_files, list):
            raise ConfigError(f"{field}['log_files']", log_files, "must be a list of strings")
        _strings(f"{field}['log_files']", log_files, "must be a list of strings")
    return value


_FIELDS: dict[str, Callable[[str, object, bool], object]] = {
    "pip": _pip,
    "uv": _uv,
    "conda": _conda,
    "env_vars": _env_vars,
    "working_dir": _working_dir,
    "py_modules": _py_modules,
    "excludes": _excludes,
    "config": _config,
}


# --- helpers ------------------------------------------------------------------------------


def _path_or_uri(field: str, value: str, kind: str, read_files: bool) -> None:
    """A local path (that exists, when files are read) or a URI of a protocol Ray knows."""
    if not is_remote_uri(value):
        if read_files and not Path(value).exists():
            raise ConfigError(
                field, value, f"must be an existing path (relative to {Path.cwd()}, as for Ray)"
            )
        return
    scheme = urlparse(value).scheme
    if scheme == "local":
        if not value[len("local://") :].startswith("/"):
            raise ConfigError(field, value, "must be local:///absolute/path (a folder on nodes)")
        return
    if scheme not in _PROTOCOLS:
        raise ConfigError(field, value, f"must use one of Ray's protocols: {', '.join(_PROTOCOLS)}")
    path = value.split("?", 1)[0]
    if scheme in _REMOTE and not path.endswith(_ARCHIVES[kind]):
        raise ConfigError(
            field, value, f"must name a {', '.join(_ARCHIVES[kind])} file (Ray's {kind} URIs)"
        )


def _dict_keys(field: str, value: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(value) - set(allowed), key=str)
    if unknown:
        raise ConfigError(field, value, f"may only have the keys {', '.join(allowed)}")
    if "packages" not in value:
        raise ConfigError(field, value, "must have 'packages'")


def _optional(field: str, value: dict, key: str, kind: type, rule: str) -> None:
    if key in value and not isinstance(value[key], kind):
        raise ConfigError(f"{field}[{key!r}]", value[key], rule)


def _options(field: str, value: dict, key: str) -> None:
    if key in value:
        options = value[key]
        if not isinstance(options, list):
            raise ConfigError(f"{field}[{key!r}]", options, "must be a list of strings")
        _strings(f"{field}[{key!r}]", options, "must be a list of strings")


def _strings(field: str, values: list, rule: str) -> list:
    for i, item in enumerate(values):
        if not isinstance(item, str):
            raise ConfigError(f"{field}[{i}]", item, rule)
    return values
