"""``Secret``: a Kubernetes Secret key a task needs, as an environment variable or a file.

Flyte's ``Secret``: the key of a secret in group ``group``; the variable defaults to
``GROUP_KEY`` (or ``KEY``) upper-cased with ``-`` as ``_``, as Flyte derives it. Only the
reference travels (``valueFrom.secretKeyRef`` or a secret volume in the pods): flyray never
reads, prints or stores a secret's value.
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass
from typing import Any

from flyray.config.names import ENV_VAR_NAME, dns1123_name
from flyray.errors import ConfigError

__all__ = ["SECRETS_MOUNT", "Secret", "normalise_secrets"]

SECRETS_MOUNT = "/etc/flyte/secrets"  # the one mount path Flyte supports
_SECRET_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")  # DNS-1123 subdomain
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")  # a Kubernetes Secret data key


@dataclass(frozen=True)
class Secret:
    """Key ``key`` of secret group ``group``, as an env var or (with ``mount``) a file.

    On Kubernetes the group is the Secret's name (the key's, without a group), made a DNS-1123
    name where it is not one (``openai_api_key`` -> ``openai-api-key``).
    """

    key: str
    group: str | None = None
    mount: pathlib.Path | None = None
    as_env_var: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _SECRET_KEY.match(self.key):
            raise ConfigError(
                "Secret.key",
                self.key,
                "must be a Kubernetes Secret data key: 1-253 of [-._a-zA-Z0-9]",
            )
        if self.group is not None and (not isinstance(self.group, str) or not self.group):
            raise ConfigError("Secret.group", self.group, "must be a non-empty string")
        if self.mount is not None and str(self.mount) != SECRETS_MOUNT:
            raise ConfigError("Secret.mount", self.mount, f"must be {SECRETS_MOUNT!r} (Flyte's)")
        if self.mount is None and self.as_env_var is None:
            derived = f"{self.group}_{self.key}" if self.group else self.key
            object.__setattr__(self, "as_env_var", derived.replace("-", "_").upper())
        if self.as_env_var is not None and not ENV_VAR_NAME.match(self.as_env_var):
            raise ConfigError(
                "Secret.as_env_var",
                self.as_env_var,
                "must be a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
            )

    @property
    def secret_name(self) -> str:
        """The Kubernetes Secret that holds the key: the group (else the key), DNS-1123."""
        name = self.group if self.group is not None else self.key
        return name if _SECRET_NAME.match(name) else dns1123_name(name, max_length=253)

    @property
    def env_var(self) -> str | None:
        """The environment variable the value appears as, or None for a mounted file only."""
        return self.as_env_var

    @property
    def mount_path(self) -> str | None:
        """Where the file appears with ``mount``: Flyte's ``/etc/flyte/secrets/<group>/<key>``."""
        if self.mount is None:
            return None
        parts = [str(self.mount), *([self.group.lower()] if self.group else []), self.key.lower()]
        return "/".join(parts)

    def env_entry(self) -> dict[str, Any] | None:
        """A container ``env`` entry that reads the value from the Secret in the pod."""
        if self.env_var is None:
            return None
        ref = {"name": self.secret_name, "key": self.key}
        return {"name": self.env_var, "valueFrom": {"secretKeyRef": ref}}

    def volume_name(self) -> str:
        """The pod volume that mounts this secret's file (a DNS-1123 label)."""
        return dns1123_name(f"flyray-secret-{self.secret_name}-{self.key}")


def normalise_secrets(field: str, value: object) -> tuple[Secret, ...]:
    """Accept a Secret, a key string, or a list of them (Flyte's ``SecretRequest``)."""
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else [value]
    secrets = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            item = Secret(key=item)
        if not isinstance(item, Secret):
            raise ConfigError(f"{field}[{index}]", item, "must be a flyray.Secret or a key string")
        secrets.append(item)
    names = [s.env_var for s in secrets if s.env_var is not None]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(field, duplicates, "must give each secret its own environment variable")
    return tuple(secrets)
