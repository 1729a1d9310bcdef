"""How the process kubelet launches a container inside its pod: the shell line and the binds.

Each container is ``ip netns exec <netns> unshare --uts sh -c LAUNCH ...`` (``ip netns exec``
gives it a mount namespace of its own): the line sets the pod's hostname, binds the folders a
private ``/tmp`` would hide (``tmp_binds``), mounts the pod's private ``/tmp`` and execs the
container's command. Everything it runs as root outside the pod is found on the system's PATH,
never on one the pod sets.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["IP", "LAUNCH", "MOUNT", "PRIVATE_ROOT", "SH", "SYSTEM_PATH", "UNSHARE", "tmp_binds"]

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# run as root outside the pod: found on the system's PATH, never on one a pod sets
IP, UNSHARE, SH, MOUNT = (
    shutil.which(tool, path=SYSTEM_PATH) or tool for tool in ("ip", "unshare", "sh", "mount")
)
# $1 hostname, $2 mount, $3 the private /tmp, then pairs "host path" "its place in the private
# /tmp" up to "--", then the container's command: arguments only, never pasted into this line,
# and nothing looked up on the PATH the pod sets (it may be anything)
LAUNCH = (
    'echo "$1" >/proc/sys/kernel/hostname && m=$2 t=$3 && shift 3 && '
    'while [ "$1" != -- ]; do "$m" --bind "$1" "$2" || exit 125; shift 2; done && shift && '
    '"$m" --rbind "$t" /tmp && exec "$@"'
)
PRIVATE_ROOT = Path("/tmp")  # what every pod gets a private copy of


def tmp_binds(paths: list[str] | None = None, *, root: Path = PRIVATE_ROOT) -> list[Path]:
    """The folders this interpreter needs that a private ``/tmp`` would hide: the virtualenv
    (``sys.prefix``), its base interpreter, and folders on ``sys.path`` (an editable install's
    source), each once (a folder inside another is not listed)."""
    if paths is None:
        paths = [sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent.parent)]
        paths += sys.path
    found: list[Path] = []
    for path in sorted({Path(p).resolve() for p in paths if p}, key=lambda p: len(p.parts)):
        if (
            path.is_relative_to(root)
            and path != root
            and path.is_dir()
            and not any(path.is_relative_to(outer) for outer in found)
        ):
            found.append(path)
    return found
