"""The real Kubernetes binaries and KubeRay operator: built by ``k8s/build.sh``, cached.

The build's output goes to a log file (it can take many minutes on a cold machine), and the
caller gets one line before and one after, so a test run does not look hung.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "BUILD_SCRIPT",
    "REQUIRED",
    "KubeBuildError",
    "build_log_path",
    "ensure_binaries",
    "go_command",
]

BUILD_SCRIPT = Path(__file__).with_name("k8s") / "build.sh"
REQUIRED = ("kube-apiserver", "etcd", "kube-controller-manager", "kuberay-operator")
BUILD_TIMEOUT_S = 3600.0

_built: dict[tuple[str, ...], Path] = {}


class KubeBuildError(RuntimeError):
    """The binaries could not be built; the message names the log and quotes its end."""


def go_command() -> str:
    """The Go toolchain the build uses: ``$GO``, ``go`` on PATH, or /usr/local/go/bin/go."""
    return os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"


def cache_root() -> Path:
    """Where ``k8s/build.sh`` keeps its binaries (``FLYRAY_K8S_CACHE`` or ~/.cache)."""
    configured = os.environ.get("FLYRAY_K8S_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "flyray" / "k8s"


def build_log_path() -> Path:
    """The build's log: next to the binaries, kept after the run for a look at failures."""
    return cache_root() / "build.log"


def ensure_binaries(
    names: tuple[str, ...] = REQUIRED, *, say: Callable[[str], None] = print
) -> Path:
    """The folder holding ``names``, built first if missing; raises ``KubeBuildError``."""
    if names in _built:
        return _built[names]
    log = build_log_path()
    log.parent.mkdir(parents=True, exist_ok=True)
    say(
        f"kubernetes: making sure {', '.join(names)} are built (a cold build takes ~17 min; "
        f"log: {log})"
    )
    began = time.monotonic()
    with log.open("w") as out:
        try:
            done = subprocess.run(
                ["bash", str(BUILD_SCRIPT), *names],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KubeBuildError(
                f"{BUILD_SCRIPT} took over {exc.timeout:.0f} s; see {log}"
            ) from exc
    text = log.read_text(errors="replace")
    lines = text.splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(lines[-40:])
        raise KubeBuildError(
            f"could not build the real Kubernetes binaries ({BUILD_SCRIPT} exited "
            f"{done.returncode}; full log {log}):\n{tail}"
        )
    folder = Path(lines[-1].strip())
    missing = [name for name in names if not os.access(folder / name, os.X_OK)]
    if missing:
        raise KubeBuildError(f"{BUILD_SCRIPT} reported {folder} but it lacks {missing}; see {log}")
    say(f"kubernetes: binaries ready in {time.monotonic() - began:.0f} s: {folder}")
    _built[names] = folder
    return folder
