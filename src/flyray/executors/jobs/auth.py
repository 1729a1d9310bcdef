"""Ray token authentication for clients of clusters flyray did not start.

Ray 2.60 turns token authentication on by default. A client sends the token as
``Authorization: Bearer <token>``, found the way Ray's own clients find it: ``RAY_AUTH_TOKEN``,
else the file at ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token`` when ``RAY_AUTH_MODE=token``.
The token is never printed or stored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from flyray.errors import ConfigError

__all__ = ["ray_auth_headers"]

DEFAULT_TOKEN_FILE = "~/.ray/auth_token"


def ray_auth_headers(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Authorization header for a Ray cluster's HTTP APIs; empty when no token is set."""
    environ = os.environ if environ is None else environ
    token = environ.get("RAY_AUTH_TOKEN", "").strip()
    if not token and environ.get("RAY_AUTH_TOKEN_PATH"):
        token = _read_token("RAY_AUTH_TOKEN_PATH", Path(environ["RAY_AUTH_TOKEN_PATH"]))
    if not token and environ.get("RAY_AUTH_MODE", "").lower() == "token":
        default = Path(DEFAULT_TOKEN_FILE).expanduser()
        token = _read_token("RAY_AUTH_MODE=token", default) if default.exists() else ""
    return {"Authorization": f"Bearer {token}"} if token else {}


def _read_token(source: str, path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            source, str(path), f"must name a readable token file ({exc.strerror})"
        ) from None
