"""Checks of the arguments ``Image``'s builder calls take; an error names the call and argument.

Each returns the value normalised (``Image.with_requirements(file)`` as a ``Path``), so a
builder call reads as one line per argument.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flyray.errors import ConfigError

__all__ = [
    "optional_text",
    "path",
    "pip_options",
    "platform",
    "python_version",
    "text",
    "this_python",
]


def this_python() -> tuple[int, int]:
    """The running Python's (major, minor): the default image's Python."""
    return sys.version_info[0], sys.version_info[1]


def pip_options(
    where: str,
    index_url: str | None,
    extra_index_urls: str | Iterable[str] | None,
    pre: bool,
    extra_args: str | None,
    secret_mounts: Any,
) -> dict[str, Any]:
    """The ``PipOptions`` fields of a call that installs Python packages, checked."""
    extra = (extra_index_urls,) if isinstance(extra_index_urls, str) else extra_index_urls or ()
    mounts = secret_mounts if isinstance(secret_mounts, (list, tuple)) else [secret_mounts]
    return {
        "index_url": optional_text(f"{where}(index_url)", index_url),
        "extra_index_urls": tuple(text(f"{where}(extra_index_urls)", u) for u in extra),
        "pre": bool(pre),
        "extra_args": optional_text(f"{where}(extra_args)", extra_args),
        "secret_mounts": tuple(m for m in mounts if m is not None),
    }


def text(field_name: str, value: object) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field_name, value, "must be a non-empty string")
    return value


def optional_text(field_name: str, value: object) -> str | None:
    """None, or a non-empty string."""
    return None if value is None else text(field_name, value)


def path(field_name: str, value: object) -> Path:
    """A ``Path``, or a non-empty string made one."""
    if isinstance(value, Path):
        return value
    return Path(text(field_name, value))


def python_version(field_name: str, value: object) -> tuple[int, int]:
    """A (major, minor) tuple; None means the running Python's."""
    if value is None:
        return this_python()
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigError(field_name, value, "must be a (major, minor) tuple such as (3, 11)")
    return value  # type: ignore[return-value]


def platform(field_name: str, value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    """A platform or a tuple of them (``"linux/amd64"``), as a tuple; None means ``default``."""
    if value is None:
        return default
    values = (value,) if isinstance(value, str) else value
    if not isinstance(values, (tuple, list)) or not values:
        raise ConfigError(field_name, value, "must be a platform or a tuple of them")
    return tuple(text(field_name, v) for v in values)
