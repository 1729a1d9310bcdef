"""Flyte's ``with_runcontext`` keywords: what flyray does with each, in each mode.

Honoured: ``name`` (the run id), ``env_vars`` (every mode), ``labels``, ``annotations`` and
``service_account`` (kuberay: its objects and pods), ``run_base_dir`` (the run store, in the
modes that keep one). Every other keyword, given a value other than Flyte's default, is
accepted with one ``FlyrayWarning`` that names it and the mode; none is dropped silently.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

from flyray.errors import ConfigError
from flyray.executors.base import RunOptions
from flyray.warn import FlyrayWarning, warn_no_effect

__all__ = ["FLYTE_DEFAULTS", "run_options", "run_store_of"]

_NO_CACHE = "flyray caches no task outputs"
_NO_PLATFORM = "flyray talks to no Flyte control plane"
_LOGS = "flyray passes the task's output and logs through as they are (see on_log)"

# keyword -> (Flyte's default, why it has no effect in any flyray mode)
_NO_EFFECT: dict[str, tuple[Any, str]] = {
    "version": (None, "flyray keeps no task versions; a run uses the code as it is now"),
    "copy_style": ("loaded_modules", "flyray bundles the folder of the task's file"),
    "copy_bundle_to": (None, "flyray makes no dry-run bundle; `flyray render` shows a run"),
    "interactive_mode": (None, "flyray bundles the task's file the same way everywhere"),
    "raw_data_path": (None, "flyray keeps no raw data; inputs and outputs go to the run store"),
    "run_start_time": (None, "flyray has no task context to carry it"),
    "overwrite_cache": (False, _NO_CACHE),
    "project": (None, _NO_PLATFORM),
    "domain": (None, _NO_PLATFORM),
    "interruptible": (None, "flyray picks no nodes by interruptibility"),
    "log_level": (None, _LOGS),
    "log_format": ("console", _LOGS),
    "user_log_level": (None, _LOGS),
    "reset_root_logger": (False, _LOGS),
    "disable_run_cache": (False, _NO_CACHE),
    "queue": (None, "the mode and its settings say where a flyray run goes"),
    "max_action_concurrency": (None, "a flyray run is one action"),
    "notifications": (None, "flyray sends no notifications"),
    "custom_context": (None, "flyray has no get_custom_context()"),
    "cache_lookup_scope": ("global", _NO_CACHE),
    "preserve_original_types": (False, "flyray passes Python values as they are, pickled"),
    "debug": (False, "flyray starts no debug server"),
    "tracked": (False, _NO_PLATFORM),
    "tracked_strict": (False, _NO_PLATFORM),
    "_tracker": (None, "it is internal to Flyte's CLI"),
}
_KUBE_ONLY = ("labels", "annotations", "service_account")  # of the objects kuberay mode creates
_HONOURED = ("name", "env_vars", "run_base_dir", "dry_run", *_KUBE_ONLY)
FLYTE_DEFAULTS: dict[str, Any] = {
    **{key: default for key, (default, _) in _NO_EFFECT.items()},
    **dict.fromkeys(_HONOURED),
    "dry_run": False,
}
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")


def run_store_of(run_base_dir: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings overrides with ``run_base_dir`` as the run store (they must agree)."""
    if run_base_dir is None:
        return settings
    given = settings.get("run_store")
    if given is not None and given != run_base_dir:
        raise ConfigError(
            "run_base_dir", run_base_dir, f"names the run store, which run_store sets to {given!r}"
        )
    return {**settings, "run_store": run_base_dir}


def run_options(mode: str, args: Mapping[str, Any]) -> tuple[str | None, RunOptions]:
    """The run's name and options from Flyte's keywords; a warning for each one ignored."""
    where = f"in {mode} mode"
    for key, (default, why) in _NO_EFFECT.items():
        if args[key] != default:
            warn_no_effect(key, args[key], where, why)
    if args["dry_run"]:
        if mode != "local":
            raise ConfigError(
                "dry_run",
                True,
                f"is not available in {mode} mode: `flyray render FILE TASK` prints what a run "
                "would create without running it",
            )
        warn_no_effect("dry_run", True, where, "the task runs, as in Flyte's local mode")
    if args["run_base_dir"] is not None and mode == "local":
        warn_no_effect("run_base_dir", args["run_base_dir"], where, "local mode stores nothing")
    for key in _KUBE_ONLY:
        if args[key] and mode != "kuberay":
            warn_no_effect(key, args[key], where, "only kuberay mode creates Kubernetes objects")
    options = RunOptions(
        env_vars=_string_map("env_vars", args["env_vars"], keys=_ENV_VAR),
        labels=_string_map("labels", args["labels"]),
        annotations=_string_map("annotations", args["annotations"]),
        service_account=_service_account(args["service_account"]),
    )
    return _run_name(args["name"]), options


def _run_name(name: object) -> str | None:
    """``name`` as a run id; a name that is none is made into one, with a warning."""
    from flyray.config.names import dns1123_name
    from flyray.manifest.names import MAX_RUN_ID_LENGTH, check_run_id

    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("name", name, "must be a non-empty string")
    try:
        return check_run_id(name)
    except ConfigError as exc:
        run_id = dns1123_name(name, max_length=MAX_RUN_ID_LENGTH)
        warnings.warn(
            f"name={name!r} is not a flyray run id ({exc.rule}); the run is named {run_id!r}",
            FlyrayWarning,
            stacklevel=4,
        )
        return run_id


def _string_map(field: str, values: object, *, keys: re.Pattern[str] | None = None) -> dict:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigError(field, values, "must be a dict of str to str")
    for key, value in values.items():
        if not isinstance(key, str) or (keys is not None and not keys.match(key)):
            raise ConfigError(f"{field}[{key!r}]", key, "must be a valid variable name")
        if not isinstance(value, str):
            raise ConfigError(f"{field}[{key!r}]", value, "must be a string")
    return dict(values)


def _service_account(name: object) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or len(name) > 253 or not _SUBDOMAIN.match(name):
        raise ConfigError(
            "service_account",
            name,
            "must be a Kubernetes ServiceAccount name: lowercase letters, digits, '-' and '.'",
        )
    return name
