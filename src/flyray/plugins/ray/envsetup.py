"""A runtime env that Ray is building, or failed to build, said in a line a user can act on.

Ray builds a ``pip``/``uv``/``conda`` env on each node before the job's driver (or, in local
mode, the first worker) starts; meanwhile the job is PENDING and nothing else is said. When
the install fails Ray's message is a long agent traceback with the installer's output at its
end (``Last 50 lines of stdout:``). ``building`` names what is being installed, for progress
lines; ``setup_failure`` turns Ray's message into one that quotes the installer's own error
lines (which name the package), or None when the text is not a runtime env failure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flyray.manifest.rayjob import ENV_SETUP_TRIES, INSTALLERS

__all__ = ["ENV_SETUP_TRIES", "INSTALLERS", "building", "setup_failure"]

_FAILED = ("Failed to set up runtime environment", "runtime_env setup failed", "RuntimeEnvSetup")
_OUTPUT = re.compile(r"Last \d+ lines of (?:stdout|stderr|output):\n", re.IGNORECASE)
_ERROR_LINE = re.compile(r"^\s*(ERROR|error|\u00d7|Because|hint:|CondaError|PackagesNotFound)")
_SHOWN = 8  # installer lines quoted at most


def building(runtime_env: Mapping[str, Any] | None) -> str | None:
    """``"pip: humanize, pyjokes"`` for an env with an installer; None without one."""
    for key in INSTALLERS:
        value = (runtime_env or {}).get(key)
        if not value:
            continue
        if isinstance(value, Mapping):
            value = value.get("packages", value.get("dependencies", "an environment"))
        if isinstance(value, list):
            names = [item for item in value if isinstance(item, str) and item.strip()]
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            return f"{key}: {shown or 'an environment'}"
        return f"{key}: {value}"
    return None


def setup_failure(text: str | None) -> str | None:
    """What failed in a runtime env setup, with the installer's error lines; None otherwise."""
    if not text or not any(marker in text for marker in _FAILED):
        return None
    node = re.search(r"\[Node ([^\]]+)\]", text)
    where = f" on node {node.group(1)}" if node else ""
    command = re.search(r"Command '\[[^\]]*?'-m', '(pip|uv)'|/bin/(uv|pip|conda)\b", text)
    tool = next((group for group in command.groups() if group), None) if command else None
    output = _OUTPUT.split(text, maxsplit=1)
    lines = [line.strip() for line in output[-1].splitlines() if line.strip()]
    if len(output) > 1:
        errors = [line for line in lines if _ERROR_LINE.match(line)] or lines[-_SHOWN:]
    else:  # no installer output: Ray's own last words (e.g. a timeout)
        skip = ("File ", "^", "Traceback", "[Node ", *_FAILED)
        errors = [line for line in lines if not line.startswith(skip)]
        errors = errors[-3:]
    what = f"{tool} install failed" if tool else "setup failed"
    return f"Ray could not build the task's runtime env{where} ({what}): " + " | ".join(
        errors[:_SHOWN]
    )
