"""``flyray.init`` and its variants: Flyte's initialisers, accepted so Flyte programs run.

flyray connects to no Flyte backend and needs no initialisation: where a run goes is its
mode (``with_runcontext(mode=...)``, the ``mode`` setting). These take Flyte's arguments and
connect nowhere; each argument given a value other than Flyte's default says, with one
``FlyrayWarning``, that it has no effect. A config file that does not exist is an error, as in
Flyte; one that exists is not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flyray._syncify import Syncified
from flyray.errors import ConfigError
from flyray.warn import warn_no_effect

__all__ = ["init", "init_from_api_key", "init_from_config", "init_in_cluster", "init_passthrough"]

# Never shown in a warning: keys, secrets, and what may carry credentials (a proxy URL with a
# user and password, an auth client config, storage options).
_SECRET = (
    "api_key",
    "client_credentials_secret",
    "http_proxy_url",
    "auth_client_config",
    "storage",
    "client_id",
)
_WHY = "flyray connects to no Flyte backend; a run goes where its mode says"
_WHERE = "in any flyray mode"
_CALLER = 5  # the user's frame: warnings.warn < warn_no_effect < _no_effect < init* < Syncified


@Syncified
def init(
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    root_dir: Path | None = None,
    log_level: int | None = None,
    log_format: str | None = None,
    reset_root_logger: bool = False,
    user_log_level: int | None = None,
    endpoint: str | None = None,
    headless: bool = False,
    insecure: bool = False,
    insecure_skip_verify: bool = False,
    ca_cert_file_path: str | None = None,
    auth_type: str = "Pkce",
    command: list[str] | None = None,
    proxy_command: list[str] | None = None,
    api_key: str | None = None,
    client_id: str | None = None,
    client_credentials_secret: str | None = None,
    auth_client_config: Any = None,
    rpc_retries: int = 3,
    http_proxy_url: str | None = None,
    disable_keyring: bool = False,
    storage: Any = None,
    batch_size: int = 1000,
    image_builder: str = "local",
    images: dict[str, str] | None = None,
    image_registry: str | None = None,
    source_config_path: Path | None = None,
    sync_local_sys_paths: bool = True,
    load_plugin_type_transformers: bool = True,
    local_persistence: bool = False,
    local_tracked: bool = False,
    local_tracked_strict: bool = False,
    scopes: list[str] | None = None,
) -> None:
    """Flyte's ``init``: nothing to do for flyray; non-default arguments warn."""
    _no_effect(init.__wrapped__, locals())


@Syncified
def init_from_config(
    path_or_config: Any = None,
    root_dir: Path | None = None,
    log_level: int | None = None,
    log_format: str = "console",
    user_log_level: int | None = None,
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    storage: Any = None,
    batch_size: int = 1000,
    image_builder: str | None = None,
    images: tuple[str, ...] | None = None,
    sync_local_sys_paths: bool = True,
) -> None:
    """Flyte's ``init_from_config``: a config file named must exist; it is not read."""
    if isinstance(path_or_config, (str, Path)) and not Path(path_or_config).expanduser().exists():
        raise ConfigError(
            "init_from_config.path_or_config",
            str(path_or_config),
            f"must be a Flyte config file that exists (the current folder is {Path.cwd()})",
        )
    _no_effect(init_from_config.__wrapped__, locals())


@Syncified
def init_from_api_key(
    api_key: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    root_dir: Path | None = None,
    log_level: int | None = None,
    log_format: str | None = None,
    storage: Any = None,
    batch_size: int = 1000,
    image_builder: str = "local",
    images: dict[str, str] | None = None,
    sync_local_sys_paths: bool = True,
    insecure_skip_verify: bool = False,
    ca_cert_file_path: str | None = None,
) -> None:
    """Flyte's ``init_from_api_key``: flyray needs no key; a key given is never shown."""
    _no_effect(init_from_api_key.__wrapped__, locals())


@Syncified
def init_in_cluster(
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    api_key: str | None = None,
    endpoint: str | None = None,
    insecure: bool = False,
) -> dict[str, Any]:
    """Flyte's ``init_in_cluster``; returns the endpoint settings, as Flyte does."""
    _no_effect(init_in_cluster.__wrapped__, locals())
    return {"endpoint": endpoint, "insecure": insecure}


@Syncified
def init_passthrough(
    endpoint: str | None = None,
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    insecure: bool = False,
) -> dict[str, Any]:
    """Flyte's ``init_passthrough``; returns the endpoint settings, as Flyte does."""
    _no_effect(init_passthrough.__wrapped__, locals())
    return {"endpoint": endpoint, "insecure": insecure}


def _no_effect(func: Any, given: dict[str, Any]) -> None:
    """One warning for each argument of ``func`` given a value other than its default."""
    code = func.__code__
    names = code.co_varnames[: code.co_argcount]
    for name, default in zip(names, func.__defaults__, strict=True):
        value = given[name]
        if value != default:
            shown = "<given>" if name in _SECRET else value
            warn_no_effect(f"{func.__name__}.{name}", shown, _WHERE, _WHY, stacklevel=_CALLER)
