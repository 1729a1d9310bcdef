"""Name rules: environments in snake or kebab case, Kubernetes DNS-1123, env vars shell names."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from flyray.errors import ConfigError

_ENV_NAME = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")  # Flyte's rule
_DNS1123_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_env_name(field: str, name: object) -> str:
    """Accept a snake_case or kebab-case name such as ``ray_env`` or ``ray-env``."""
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise ConfigError(
            field,
            name,
            "must be snake_case or kebab-case: lowercase letters and digits, words joined "
            "by single '_' or '-'",
        )
    return name


def check_dns1123_label(field: str, name: object) -> str:
    """Accept a Kubernetes DNS-1123 label: lowercase alphanumerics and '-', at most 63."""
    if not isinstance(name, str) or len(name) > 63 or not _DNS1123_LABEL.match(name):
        raise ConfigError(
            field,
            name,
            "must be a DNS-1123 label: at most 63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit",
        )
    return name


def check_dns1123_subdomain(field: str, name: object) -> str:
    """Accept a Kubernetes object name such as a Secret's: DNS-1123 labels joined by '.'."""
    labels = name.split(".") if isinstance(name, str) else [None]
    if len(str(name)) > 253 or not all(label and _DNS1123_LABEL.match(label) for label in labels):
        raise ConfigError(
            field,
            name,
            "must be a Kubernetes object name (DNS-1123 subdomain): at most 253 lowercase "
            "letters, digits, '-' or '.', each part starting and ending with a letter or digit",
        )
    return name  # type: ignore[return-value]


def dns1123_name(name: str, *, max_length: int = 63) -> str:
    """Derive a DNS-1123 label from any name; a hash suffix keeps truncated names distinct."""
    label = _NOT_DNS.sub("-", name.lower()).strip("-") or "x"
    if len(label) <= max_length:
        return label
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{label[: max_length - 9].rstrip('-')}-{digest}"


def check_env_vars(field: str, env_vars: Mapping[object, object]) -> None:
    """Accept variable names mapped to strings; an error names the entry (``env_vars['1x']``)."""
    for key, value in env_vars.items():
        if not isinstance(key, str) or not ENV_VAR_NAME.match(key):
            raise ConfigError(f"{field}[{key!r}]", key, "must be a valid variable name")
        if not isinstance(value, str):
            raise ConfigError(f"{field}[{key!r}]", value, "must be a string")
