"""``Secret``: a Kubernetes Secret key a task needs as an environment variable.

Only the reference travels (``valueFrom.secretKeyRef`` in the pods): flyray never reads,
prints or stores a secret's value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flyray.errors import ConfigError

__all__ = ["Secret", "normalise_secrets"]

_SECRET_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")  # DNS-1123 subdomain
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Secret:
    """Key ``key`` of the Kubernetes Secret ``group`` (default: named like the key).

    ``as_env_var`` names the variable (default: the key upper-cased, other characters "_").
    """

    key: str
    group: str | None = None
    as_env_var: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _SECRET_KEY.match(self.key):
            raise ConfigError("Secret.key", self.key, "must be a Secret data key ([-._a-zA-Z0-9])")
        if not _SECRET_NAME.match(self.secret_name):
            raise ConfigError(
                "Secret.group", self.secret_name, "must be a Kubernetes Secret name (DNS-1123)"
            )
        if not _ENV_VAR.match(self.env_var):
            raise ConfigError("Secret.as_env_var", self.env_var, "must be a valid variable name")

    @property
    def secret_name(self) -> str:
        """The Kubernetes Secret that holds the key."""
        return self.group if self.group is not None else self.key

    @property
    def env_var(self) -> str:
        """The environment variable the value appears as in every Ray container."""
        return self.as_env_var or re.sub(r"[^A-Za-z0-9_]", "_", self.key).upper()

    def env_entry(self) -> dict[str, Any]:
        """A container ``env`` entry that reads the value from the Secret in the pod."""
        ref = {"name": self.secret_name, "key": self.key}
        return {"name": self.env_var, "valueFrom": {"secretKeyRef": ref}}


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
    names = [s.env_var for s in secrets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(field, duplicates, "must give each secret its own environment variable")
    return tuple(secrets)
