"""A `ray` executable whose first starts of a node fail the way a start that timed out does.

``flaky_ray(folder, head=0, worker=1)`` writes a wrapper of the real `ray` that fails the
first ``head`` starts of a head and the first ``worker`` starts of a worker: it leaves a
process behind in its session (as a half-started node leaves a raylet), prints what Ray prints
when a node's raylet did not register in time, and exits 1. Every other call runs the real
`ray`. The pids of the processes left behind are in ``<folder>/left-<role>-<n>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from flyray.executors.localcluster.raystart import _ray_executable

__all__ = ["TIMED_OUT", "flaky_ray", "left_behind"]

TIMED_OUT = (
    "Exception: The current node timed out during startup. This could happen because some "
    "of the raylet failed to startup or the GCS has become overloaded."
)

_WRAPPER = """#!{python}
import os, subprocess, sys
folder, fails = {folder!r}, {fails!r}
role = "head" if "--head" in sys.argv else "worker"
if sys.argv[1:2] == ["start"]:
    n = sum(1 for name in os.listdir(folder) if name.startswith(f"left-{{role}}-"))
    if n < fails[role]:
        left = subprocess.Popen(["sleep", "300"])
        with open(os.path.join(folder, f"left-{{role}}-{{n + 1}}"), "w") as f:
            f.write(str(left.pid))
        print("Traceback (most recent call last):", file=sys.stderr)
        print({timed_out!r}, file=sys.stderr)
        sys.exit(1)
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""


def flaky_ray(folder: Path, *, head: int = 0, worker: int = 1) -> str:
    """The path of a `ray` that fails the first ``head``/``worker`` node starts (see above)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ray"
    path.write_text(
        _WRAPPER.format(
            python=sys.executable,
            folder=str(folder),
            fails={"head": head, "worker": worker},
            timed_out=TIMED_OUT,
            real=_ray_executable(),
        )
    )
    path.chmod(0o755)
    return str(path)


def left_behind(folder: Path) -> list[int]:
    """The pids of the processes the failed starts left behind."""
    return [int(path.read_text()) for path in sorted(folder.glob("left-*"))]
